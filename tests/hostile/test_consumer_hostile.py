"""Hostile frames and headers against the consumer: error frames, state and logs.

Every input must get its matching error frame (or a clean close), never an
unhandled exception. Locally rejected frames must not reach the backend, the
connection's lease must stay held, and each rejection class must log at most a
few sanitised, bounded lines however long the flood.
"""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.test import override_settings

from djust_dist import mount_token
from djust_dist.backends import MemoryBackend
from djust_dist.engine.base import Backend
from djust_dist.logutil import reset_log_throttle
from djust_dist.transport.consumer import LiveViewConsumer
from tests.transport.conftest import SpyBackend
from tests.transport.views import CounterView

pytestmark = pytest.mark.django_db(transaction=True)

IP = "198.51.100.60"
MAX_LOG_LINE = 400
# One socket per IP, so a second connection shows whether the lease is still held.
CONFIG: dict[str, Any] = {
    "max_message_size": 0,
    "rate_limit": {"max_warnings": 100_000, "max_connections_per_ip": 1},
}

Connect = Callable[..., Awaitable[WebsocketCommunicator]]


@pytest.fixture
def spy() -> SpyBackend:
    return SpyBackend(MemoryBackend())


@pytest.fixture
async def connect(spy: SpyBackend) -> AsyncIterator[Connect]:
    class HostileConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return spy

    app = HostileConsumer.as_asgi()
    reset_log_throttle()

    async with AsyncExitStack() as stack:

        async def open_socket(
            ip: str = IP, headers: list[tuple[bytes, bytes]] | None = None
        ) -> WebsocketCommunicator:
            communicator = WebsocketCommunicator(app, "/ws/liveview/", headers=headers or [])
            communicator.scope["client"] = (ip, 40000)
            connected, _ = await communicator.connect(timeout=5)
            assert connected
            stack.push_async_callback(communicator.disconnect)
            return communicator

        yield open_socket


async def next_frame(communicator: WebsocketCommunicator) -> dict[str, Any]:
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.send", output
    text = output["text"]
    # A real server must be able to send it: the frame is valid UTF-8 JSON.
    text.encode("utf-8")
    frame: dict[str, Any] = json.loads(text)
    return frame


async def send_text(communicator: WebsocketCommunicator, text: str) -> dict[str, Any]:
    await communicator.send_to(text_data=text)
    return await next_frame(communicator)


async def mounted(connect: Connect, **kwargs: Any) -> WebsocketCommunicator:
    communicator = await connect(**kwargs)
    reply = await send_text(
        communicator, json.dumps({"type": "mount", "token": mount_token(CounterView)})
    )
    assert reply["type"] == "render"
    return communicator


async def assert_lease_held(connect: Connect, communicator: WebsocketCommunicator) -> None:
    """Check that the socket still replies and that a second socket of its IP hits the limit."""
    assert (await send_text(communicator, '{"type":"ping"}'))["type"] == "pong"
    second = await connect()
    rejected = await next_frame(second)
    assert rejected["type"] == "connection_rejected"
    assert rejected["reason"] == "limit"


def assert_logs_bounded(records: list[logging.LogRecord], max_per_class: int = 2) -> None:
    per_class: dict[str, int] = {}
    for record in records:
        message = record.getMessage()
        assert message.isprintable(), message
        assert len(message) <= MAX_LOG_LINE, message[:200]
        args = record.args if isinstance(record.args, tuple) else ()
        # The consumer's rejection lines name the rejection class as their second argument.
        key = f"{record.msg}:{args[1] if len(args) > 1 else ''}"
        per_class[key] = per_class.get(key, 0) + 1
    assert max(per_class.values(), default=0) <= max_per_class, per_class


def category_samples() -> dict[str, str]:
    """Return the first non-ASCII character of every Unicode general category."""
    samples: dict[str, str] = {}
    for code in range(0x80, sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        samples.setdefault(category, chr(code))
    return samples


HOSTILE_TEXT = [
    ("not json", "}{", "invalid_message"),
    ("lone surrogate raw", "\ud800", "invalid_message"),
    ("surrogate in name", '{"type":"event","event":"a\ud800"}', "invalid_event_name"),
    ("escaped surrogate", '{"type":"event","event":"\\udfff"}', "invalid_event_name"),
    ("deep list", "[" * 100_000 + "]" * 100_000, "invalid_message"),
    (
        "deep params",
        '{"type":"event","event":"increment","params":' + "[" * 100_000,
        "invalid_message",
    ),
    (
        "huge int",
        '{"type":"event","event":"increment","params":{"by":' + "9" * 10_000 + "}}",
        "invalid_message",
    ),
    ("nan", '{"type":"event","event":"increment","params":{"by":NaN}}', "invalid_message"),
    (
        "infinity",
        '{"type":"event","event":"increment","params":{"by":-Infinity}}',
        "invalid_message",
    ),
    ("overflow", '{"type":"event","event":"increment","params":{"by":1e400}}', "invalid_message"),
    ("array", "[1,2]", "invalid_message"),
    ("no type", "{}", "invalid_message"),
    ("bad type", '{"type":"__class__"}', "invalid_message"),
    ("long ref", '{"type":"ping","ref":"' + "r" * 65 + '"}', "invalid_message"),
    ("bool ref", '{"type":"ping","ref":true}', "invalid_message"),
    ("dunder", '{"type":"event","event":"__init__"}', "invalid_event_name"),
    ("control name", '{"type":"event","event":"a\\u0000\\n\\u001b"}', "invalid_event_name"),
]


@pytest.mark.parametrize(
    ("text", "code"), [case[1:] for case in HOSTILE_TEXT], ids=[case[0] for case in HOSTILE_TEXT]
)
@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_hostile_text_rejected_locally(
    connect: Connect, spy: SpyBackend, caplog: pytest.LogCaptureFixture, text: str, code: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="djust_dist")
    communicator = await mounted(connect)
    consumed = spy.calls["consume"]

    replies = [await send_text(communicator, text) for _ in range(20)]

    assert {reply["type"] for reply in replies} == {"error"}
    assert {reply["error"] for reply in replies} == {code}
    assert spy.calls["consume"] == consumed
    await assert_lease_held(connect, communicator)
    assert_logs_bounded(caplog.records)


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_binary_frames_rejected(connect: Connect, spy: SpyBackend) -> None:
    communicator = await mounted(connect)
    consumed = spy.calls["consume"]

    for payload in (b"\xff\xfe\x00", b'{"type":"ping"}', bytes(range(256)), b"\xed\xa0\x80"):
        await communicator.send_to(bytes_data=payload)
        reply = await next_frame(communicator)
        assert reply["error"] == "invalid_message"

    assert spy.calls["consume"] == consumed
    await assert_lease_held(connect, communicator)


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_names_of_every_category_rejected(
    connect: Connect, spy: SpyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="djust_dist")
    communicator = await mounted(connect)
    consumed = spy.calls["consume"]
    samples = category_samples()

    codes = {}
    for category, char in samples.items():
        text = json.dumps({"type": "event", "event": f"increment{char}"})
        codes[category] = (await send_text(communicator, text))["error"]

    assert len(samples) == 30
    assert set(codes.values()) == {"invalid_event_name"}
    assert spy.calls["consume"] == consumed
    assert_logs_bounded(caplog.records)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, "invalid_message"),
        (True, "invalid_message"),
        (7, "invalid_message"),
        (1.5, "invalid_message"),
        ("by", "invalid_message"),
        ([1], "invalid_message"),
        ({"nope": 1}, "invalid_message"),
        ({"by": "x"}, "handler_error"),
        ({"by": [1]}, "handler_error"),
        ({"by": 2}, "render"),
        ({}, "render"),
    ],
)
@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_params_of_every_json_type(
    connect: Connect, spy: SpyBackend, params: Any, expected: str
) -> None:
    communicator = await mounted(connect)
    consumed = spy.calls["consume"]

    reply = await send_text(
        communicator,
        json.dumps({"type": "event", "event": "increment", "params": params, "ref": 5}),
    )

    assert reply.get("error", reply["type"]) == expected
    assert reply["ref"] == 5
    # Shape and binding errors are local; a frame that reaches the handler costs a token.
    assert spy.calls["consume"] == consumed + (expected != "invalid_message")


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_surrogate_ref_echoed_as_escape(connect: Connect) -> None:
    communicator = await mounted(connect)

    await communicator.send_to(text_data='{"type":"ping","ref":"\\ud800x"}')
    output = await communicator.receive_output(timeout=5)

    assert output["text"] == '{"type":"pong","ref":"\\ud800x"}'


@override_settings(LIVEVIEW_CONFIG={"rate_limit": {"max_warnings": 3}})
async def test_flood_closes_with_cooldown(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="djust_dist")
    communicator = await mounted(connect)

    for _ in range(3):
        await communicator.send_to(text_data="\x00\x01garbage")
    replies = [await communicator.receive_output(timeout=5) for _ in range(4)]
    again = await connect()
    rejected = await next_frame(again)

    assert [reply["type"] for reply in replies] == ["websocket.send"] * 3 + ["websocket.close"]
    assert replies[-1]["code"] == 4429
    assert rejected["reason"] == "cooldown"
    assert_logs_bounded(caplog.records)


@pytest.mark.parametrize(
    "forwarded",
    [
        b"\x00\x01\x02",
        b"203.0.113.1\r\nSet-Cookie: x",
        b"\x1b]0;title\x07",
        ",".join(["203.0.113.7"] * 10_000).encode(),
        b"[2001:db8::1%eth0]:443",
        b"::ffff:203.0.113.9",
    ],
    ids=["nul", "crlf", "osc", "10k-entries", "v6-zone-port", "mapped"],
)
@override_settings(LIVEVIEW_CONFIG={**CONFIG, "trusted_proxies": 1})
async def test_hostile_forwarded_for(
    connect: Connect, spy: SpyBackend, caplog: pytest.LogCaptureFixture, forwarded: bytes
) -> None:
    caplog.set_level(logging.DEBUG, logger="djust_dist")

    communicator = await mounted(connect, ip="10.0.0.5", headers=[(b"x-forwarded-for", forwarded)])

    assert (await send_text(communicator, '{"type":"ping"}'))["type"] == "pong"
    assert spy.calls["admit_connection"] == 1
    assert_logs_bounded(caplog.records)
