# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# The Rack app of examples/ruby (app.rb), for Unicorn and Puma:
#   cbctl apply -f examples/ruby/breakers.yaml
#   cd examples/ruby && unicorn -c unicorn.conf.rb    # or: puma -C puma.rb
begin
  require "cbshm"
rescue LoadError => e
  raise unless e.path == "cbshm" # the gem is not installed: the source tree's

  $LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
  require "cbshm"
end
require_relative "app"

run DownstreamApp
