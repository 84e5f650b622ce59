# gunicorn -c gunicorn.conf.py app:app
# Four sync workers sharing one breaker table. preload_app imports app.py
# in the master, so the breaker is attached once and every forked worker
# inherits the handle; without it each worker attaches on import, which
# works as well.
workers = 4
worker_class = "sync"
bind = "127.0.0.1:8000"
preload_app = True
timeout = 30
