# SPDX-License-Identifier: MIT
# gunicorn serving examples/python/app.py (the app uWSGI serves too):
#   cbctl apply -f examples/python/breakers.yaml
#   cd examples/gunicorn && gunicorn -c gunicorn.conf.py app:app
import os

# The app, one directory over, beside its breakers.yaml.
pythonpath = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")

# Four sync workers sharing one breaker table. preload_app imports app.py
# in the master, so the breaker is attached once and every forked worker
# inherits the handle (a master running as root leaves that to each
# worker, below); without it each worker attaches on import, which works
# as well.
workers = 4
bind = "127.0.0.1:8000"
preload_app = True
timeout = 30

# Greenlet workers (Debian's python3-gevent, python3-eventlet) share the
# breaker the same way, with many requests in flight in each worker:
# worker_class = "gevent" or "eventlet" (or -k on the command line).
worker_class = "sync"

# Started as root, gunicorn's workers drop to `user` and `group`. The
# segment then belongs to that user (breakers.yaml: `owner: www-data`,
# applied by root's `cbctl apply`), and since root maps no segment another
# user can write, the master does not open the breaker: each worker does,
# after its drop, here.
# user = "www-data"
# group = "www-data"


def post_worker_init(worker):
    import app
    if os.environ.get("BREAKER_MODE", "shared") != "per-process":
        app.attach_breaker("post_worker_init")
