# SPDX-License-Identifier: MIT
# frozen_string_literal: true

# Puma in cluster mode serving examples/ruby/config.ru with 4 worker
# processes that share one breaker table:
#   cbctl apply -f examples/ruby/breakers.yaml
#   cd examples/ruby && puma -C puma.rb
workers 4
# One thread a worker (PUMA_THREADS=1), so that at most 4 calls are in
# flight host-wide and at most failure_threshold + 3 reach a dead
# downstream. With N threads a worker the threads share the breaker too
# (it is thread-safe, and Fiddle calls into the library without the GVL),
# and the bound is failure_threshold + 4 N - 1.
thread_count = Integer(ENV.fetch("PUMA_THREADS", "1"))
threads thread_count, thread_count
bind ENV.fetch("BIND", "tcp://127.0.0.1:8080")
rackup File.join(__dir__, "config.ru")

# The app is loaded in the master, before the fork. With BREAKER_ATTACH=
# preload (app.rb's default) it opens the breaker there, once, and every
# worker inherits the handle: libcbshm's handles survive fork.
preload_app!

# Or each worker opens it once it has booted (BREAKER_ATTACH=after_fork).
on_worker_boot do
  DownstreamApp.attach_breaker("on_worker_boot") unless DownstreamApp::PER_PROCESS
end
