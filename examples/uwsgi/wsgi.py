# SPDX-License-Identifier: MIT
"""uWSGI's entry point (uwsgi.ini: module = wsgi:app): the WSGI app of
examples/python/app.py, and a postfork hook that attaches each worker's
breaker after its fork - the one place a worker of a master that stays
root (master-as-root) can, once it has dropped to the segment's owner.
uwsgidecorators' @postfork (Debian's python3-uwsgidecorators) sets the
same hook."""

import os

import uwsgi  # only inside uWSGI

import app as example

app = example.app


def attach_after_fork():
    # Already attached when the master loaded the app as the owner: the
    # handle came with the fork, and attach_breaker() leaves it be.
    if os.environ.get("BREAKER_MODE", "shared") != "per-process":
        example.attach_breaker("postfork")


uwsgi.post_fork_hook = attach_after_fork
