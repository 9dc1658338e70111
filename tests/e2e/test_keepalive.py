"""The app keeps an idle keep-alive connection open longer than its clients leave one idle: a
request sent on it a few seconds later is answered, not reset (gunicorn's default of 2 s dropped
connections at the moment clients reused them)."""

import socket
import time

import pytest

from native.ports import PORTS

pytestmark = pytest.mark.stack
IDLE = 5  # seconds: more than gunicorn's default keep-alive, less than the app's


def request(sock, method, path, body=b""):
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the app closed the connection instead of answering"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return int(head.split()[1])


def test_an_idle_keep_alive_connection_is_still_answered(stack):
    with socket.create_connection(("127.0.0.1", PORTS["app"]), timeout=10) as sock:
        assert request(sock, "GET", "/healthz") == 200
        time.sleep(IDLE)
        sock.setblocking(False)
        try:
            assert sock.recv(1, socket.MSG_PEEK) != b"", f"the app closed the idle connection within {IDLE} s"
        except BlockingIOError:
            pass  # nothing to read: the connection is open
        sock.setblocking(True)
        assert request(sock, "POST", "/api/tasks", b"{not json") == 400
