# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# Unicorn serving examples/ruby/config.ru with 4 workers that share one
# breaker table:
#   cbctl apply -f examples/ruby/breakers.yaml
#   cd examples/ruby && unicorn -c unicorn.conf.rb
worker_processes 4
listen ENV.fetch("LISTEN", "127.0.0.1:8080")
timeout 30

# The app is loaded in the master, before the fork. With BREAKER_ATTACH=
# preload (app.rb's default) it opens the breaker there, once, and every
# worker inherits the handle: libcbshm's handles survive fork.
preload_app true

# Or each worker opens it after its fork (BREAKER_ATTACH=after_fork):
# what a master that should touch no segment does. Unicorn's `user`
# directive drops a worker's privileges only after this hook; the breaker
# opens fail-open all the same and attaches by itself once the worker
# runs as the segment's owner.
after_fork do |_server, _worker|
  DownstreamApp.attach_breaker("after_fork") unless DownstreamApp::PER_PROCESS
end
