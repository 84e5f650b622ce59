"""The downstream of the gunicorn test: a TCP server on 127.0.0.1:PORT
answering "HTTP/1.0 200 OK" to every connection, in its own process so
that stopping it is stopping a process.

    usage: downstream.py PORT
"""

import socket
import sys
import threading


def serve(c):
    with c:
        try:
            c.recv(256)
            c.sendall(b"HTTP/1.0 200 OK\r\n\r\nok")
        except OSError:
            pass


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(128)
    while True:
        c, _ = s.accept()
        # A thread a connection: one slow client never holds up the next.
        threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
