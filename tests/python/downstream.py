# SPDX-License-Identifier: MIT
"""The downstream of the server tests: a TCP server on 127.0.0.1:PORT
answering STATUS (default "HTTP/1.0 200 OK") to every connection, DELAY
seconds (default 0) after its request, in its own process so that
stopping it is stopping a process.

    usage: downstream.py PORT [STATUS [DELAY]]
"""

import socket
import sys
import threading
import time


def serve(c, status, delay):
    with c:
        try:
            c.recv(256)
            time.sleep(delay)
            c.sendall(status + b"\r\n\r\nok")
        except OSError:
            pass


def main():
    status = (sys.argv[2] if len(sys.argv) > 2 else "HTTP/1.0 200 OK").encode()
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(128)
    while True:
        c, _ = s.accept()
        # A thread a connection: one slow client never holds up the next.
        threading.Thread(target=serve, args=(c, status, delay), daemon=True).start()


if __name__ == "__main__":
    main()
