"""The local round-robin proxy appends X-Forwarded-For as nginx does."""

from __future__ import annotations

from demo.proxy import rewrite_head

PLAIN = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: keep-alive\r\n\r\n"
UPGRADE = (
    b"GET /ws/liveview/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def header_lines(head: bytes) -> list[bytes]:
    return head.rstrip(b"\r\n").split(b"\r\n")[1:]


def test_adds_forwarded_for() -> None:
    lines = header_lines(rewrite_head(PLAIN, "127.0.0.1"))
    assert b"X-Forwarded-For: 127.0.0.1" in lines


def test_appends_to_client_forwarded_for() -> None:
    head = PLAIN.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
    lines = header_lines(rewrite_head(head, "127.0.0.1"))
    assert b"X-Forwarded-For: 6.6.6.6, 127.0.0.1" in lines
    assert sum(line.lower().startswith(b"x-forwarded-for") for line in lines) == 1


def test_plain_request_gets_connection_close() -> None:
    lines = header_lines(rewrite_head(PLAIN, "127.0.0.1"))
    assert b"Connection: close" in lines
    assert b"Connection: keep-alive" not in lines


def test_upgrade_keeps_connection_headers() -> None:
    rewritten = rewrite_head(UPGRADE, "127.0.0.1")
    lines = header_lines(rewritten)
    assert rewritten.startswith(b"GET /ws/liveview/ HTTP/1.1\r\n")
    assert b"Connection: Upgrade" in lines
    assert b"Upgrade: websocket" in lines
    assert b"Connection: close" not in lines
    assert rewritten.endswith(b"\r\n\r\n")
