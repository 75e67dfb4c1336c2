"""The consumer's order of checks, wire protocol and close codes, on both backends."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.test import override_settings

from djust_dist import mount_token
from djust_dist.engine.base import Backend
from djust_dist.transport.consumer import LiveViewConsumer
from tests.transport.conftest import Connect, SpyBackend
from tests.transport.views import CounterView, FailingMountView, SearchView

pytestmark = pytest.mark.django_db(transaction=True)

STRICT_CONFIG: dict[str, Any] = {"rate_limit": {"max_warnings": 1000}}


def config(**overrides: Any) -> dict[str, Any]:
    """Return a LIVEVIEW_CONFIG that keeps the defaults except ``overrides``."""
    rate_limit = {"max_warnings": 1000, **overrides.pop("rate_limit", {})}
    return {"rate_limit": rate_limit, **overrides}


async def send(communicator: WebsocketCommunicator, payload: Any) -> dict[str, Any]:
    """Send one JSON frame and return the parsed reply."""
    await communicator.send_to(text_data=json.dumps(payload))
    return await receive(communicator)


async def receive(communicator: WebsocketCommunicator) -> dict[str, Any]:
    reply = await communicator.receive_output(timeout=5)
    assert reply["type"] == "websocket.send", reply
    frame: dict[str, Any] = json.loads(reply["text"])
    return frame


async def mounted(connect: Connect, view: type = CounterView, **kwargs: Any) -> Any:
    communicator = await connect(**kwargs)
    reply = await send(communicator, {"type": "mount", "token": mount_token(view)})
    assert reply["type"] == "render", reply
    return communicator


async def expect_close(communicator: WebsocketCommunicator, code: int) -> None:
    output = await communicator.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": code}


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_mount_renders_view(connect: Connect) -> None:
    communicator = await connect()

    reply = await send(communicator, {"type": "mount", "token": mount_token(CounterView), "ref": 1})

    assert reply == {"type": "render", "html": "count=0\n", "ref": 1}


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_mount_params_from_token(connect: Connect) -> None:
    communicator = await connect()

    reply = await send(
        communicator, {"type": "mount", "token": mount_token(CounterView, {"start": 41})}
    )

    assert reply["html"] == "count=41\n"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_event_rerenders_and_echoes_ref(connect: Connect) -> None:
    communicator = await mounted(connect)

    first = await send(communicator, {"type": "event", "event": "increment", "ref": "a"})
    second = await send(
        communicator, {"type": "event", "event": "increment", "params": {"by": 5}, "ref": 2}
    )

    assert first == {"type": "render", "html": "count=1\n", "ref": "a"}
    assert second == {"type": "render", "html": "count=6\n", "ref": 2}


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_async_handler_awaited(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(communicator, {"type": "event", "event": "async_increment"})

    assert reply["html"] == "count=10\n"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_ping_pong(connect: Connect) -> None:
    communicator = await connect()

    reply = await send(communicator, {"type": "ping", "ref": 3})

    assert reply == {"type": "pong", "ref": 3}


@pytest.mark.parametrize(
    "name",
    ["__init__", "_secret", "increment\n", "a" * 65, 7, None, ["increment"], "Increment", ""],
    ids=["dunder", "private", "newline", "65chars", "int", "none", "list", "upper", "empty"],
)
@override_settings(LIVEVIEW_CONFIG=config(event_security="open"))
async def test_invalid_event_name(connect: Connect, backend: SpyBackend, name: Any) -> None:
    communicator = await mounted(connect)
    consumed_before = backend.calls["consume"]

    reply = await send(communicator, {"type": "event", "event": name, "ref": 9})

    assert reply["type"] == "error"
    assert reply["error"] == "invalid_event_name"
    assert reply["ref"] == 9
    assert backend.calls["consume"] == consumed_before


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_64_char_name_passes_guard(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(communicator, {"type": "event", "event": "a" * 64})

    assert reply["error"] == "unknown_event"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_undecorated_unknown_in_strict(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(communicator, {"type": "event", "event": "undecorated"})
    missing = await send(communicator, {"type": "event", "event": "no_such_handler"})

    assert reply["error"] == "unknown_event"
    assert missing["error"] == "unknown_event"
    assert reply["message"] == missing["message"]


@pytest.mark.parametrize("mode", ["warn", "open"])
async def test_undecorated_allowed_in_mode(connect: Connect, mode: str) -> None:
    with override_settings(LIVEVIEW_CONFIG=config(event_security=mode)):
        communicator = await mounted(connect)

        reply = await send(communicator, {"type": "event", "event": "undecorated"})

    assert reply == {"type": "render", "html": "count=-1\n"}


@pytest.mark.parametrize("mode", ["strict", "warn", "open", "bogus"])
@pytest.mark.parametrize("name", ["mount", "render", "dispatch", "get_context_data", "as_view"])
async def test_base_methods_never_callable(connect: Connect, mode: str, name: str) -> None:
    with override_settings(LIVEVIEW_CONFIG=config(event_security=mode)):
        communicator = await mounted(connect)

        reply = await send(communicator, {"type": "event", "event": name})

    assert reply["error"] == "unknown_event"


@override_settings(LIVEVIEW_CONFIG=config(event_security="bogus"))
async def test_invalid_mode_behaves_strict(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(communicator, {"type": "event", "event": "undecorated"})

    assert reply["error"] == "unknown_event"


@override_settings(LIVEVIEW_CONFIG=config(max_message_size=64))
async def test_size_limit_counts_utf8_bytes(connect: Connect, backend: SpyBackend) -> None:
    communicator = await connect()
    emoji_frame = json.dumps({"type": "ping", "pad": "\U0001f600" * 20}, ensure_ascii=False)
    assert len(emoji_frame) <= 64 < len(emoji_frame.encode())

    await communicator.send_to(text_data=emoji_frame)
    reply = await receive(communicator)

    assert reply["error"] == "message_too_large"
    assert backend.calls.get("consume", 0) == 0


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_default_size_limit_64k(connect: Connect) -> None:
    communicator = await connect()
    frame = '{"type":"ping","pad":"%s"}'
    padding = "x" * (65536 - len(frame % ""))

    await communicator.send_to(text_data=frame % padding)
    fits = await receive(communicator)
    await communicator.send_to(text_data=frame % (padding + "y"))
    too_large = await receive(communicator)

    assert fits["type"] == "pong"
    assert too_large["error"] == "message_too_large"


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x01binary",
        "[1, 2]",
        '"text"',
        "42",
        "null",
        "{not json",
        '{"type": "teleport"}',
        '{"type": "event", "event": "increment", "params": [1]}',
        '{"type": "event", "event": "increment", "ref": {"a": 1}}',
        '{"type": "event", "event": "increment", "ref": "' + "r" * 65 + '"}',
        '{"type": "ping", "ref": NaN}',
        "[" * 100_000 + "]" * 100_000,
    ],
    ids=[
        "binary",
        "array",
        "string",
        "number",
        "null",
        "broken",
        "unknown-type",
        "params-list",
        "ref-object",
        "ref-too-long",
        "nan",
        "deep-nesting",
    ],
)
@override_settings(LIVEVIEW_CONFIG=config(max_message_size=0))
async def test_invalid_message(connect: Connect, backend: SpyBackend, frame: str | bytes) -> None:
    communicator = await mounted(connect)
    consumed_before = backend.calls["consume"]

    if isinstance(frame, bytes):
        await communicator.send_to(bytes_data=frame)
    else:
        await communicator.send_to(text_data=frame)
    reply = await receive(communicator)

    assert reply["type"] == "error"
    assert reply["error"] == "invalid_message"
    assert backend.calls["consume"] == consumed_before

    still_alive = await send(communicator, {"type": "ping"})
    assert still_alive["type"] == "pong"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_params_must_bind(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(
        communicator, {"type": "event", "event": "increment", "params": {"nope": 1}, "ref": 4}
    )
    after = await send(communicator, {"type": "event", "event": "increment"})

    assert reply["error"] == "invalid_message"
    assert reply["ref"] == 4
    assert after["html"] == "count=1\n"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_handler_error_keeps_connection(connect: Connect) -> None:
    communicator = await mounted(connect)

    reply = await send(communicator, {"type": "event", "event": "explode", "ref": 5})
    after = await send(communicator, {"type": "event", "event": "increment"})

    assert reply["error"] == "handler_error"
    assert "handler bug" not in reply["message"]
    assert reply["ref"] == 5
    assert after["html"] == "count=1\n"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_event_before_mount(connect: Connect) -> None:
    communicator = await connect()

    reply = await send(communicator, {"type": "event", "event": "increment"})

    assert reply["error"] == "not_mounted"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_mount_error_is_handler_error(connect: Connect) -> None:
    communicator = await connect()

    reply = await send(communicator, {"type": "mount", "token": mount_token(FailingMountView)})
    pong = await send(communicator, {"type": "ping"})

    assert reply["error"] == "handler_error"
    assert pong["type"] == "pong"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_second_mount_replaces_view(connect: Connect) -> None:
    communicator = await mounted(connect)
    await send(communicator, {"type": "event", "event": "increment"})

    reply = await send(communicator, {"type": "mount", "token": mount_token(SearchView)})
    search = await send(
        communicator, {"type": "event", "event": "search", "params": {"query": "q"}}
    )

    assert reply["html"] == "query=\n"
    assert search["html"] == "query=q\n"


@pytest.mark.parametrize("token", ["garbage", "", 12, None])
@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_invalid_token_closes_4403(connect: Connect, token: Any) -> None:
    communicator = await connect()

    reply = await send(communicator, {"type": "mount", "token": token, "ref": 1})

    assert reply == {
        "type": "error",
        "error": "invalid_token",
        "message": reply["message"],
        "ref": 1,
    }
    await expect_close(communicator, 4403)


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_tampered_token_closes_4403(connect: Connect) -> None:
    communicator = await connect()
    token = mount_token(CounterView)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    reply = await send(communicator, {"type": "mount", "token": tampered})

    assert reply["error"] == "invalid_token"
    await expect_close(communicator, 4403)


@override_settings(LIVEVIEW_CONFIG=config(rate_limit={"rate": 0.01, "burst": 3}))
async def test_connection_bucket_counts_every_frame(connect: Connect) -> None:
    communicator = await connect()

    mount = await send(communicator, {"type": "mount", "token": mount_token(CounterView)})
    ping = await send(communicator, {"type": "ping"})
    event = await send(communicator, {"type": "event", "event": "increment"})
    denied_ping = await send(communicator, {"type": "ping", "ref": 8})
    denied_event = await send(communicator, {"type": "event", "event": "increment", "ref": 9})

    assert [mount["type"], ping["type"], event["type"]] == ["render", "pong", "render"]
    assert denied_ping["type"] == "rate_limit_exceeded"
    assert denied_ping["event"] is None
    assert denied_ping["ref"] == 8
    assert denied_event["event"] == "increment"
    assert denied_event["ref"] == 9
    # Burst 3 is spent; at 0.01 tokens/s the next token is about 100 s away.
    assert 99 < denied_event["retry_after"] <= 100


class User:
    """An authenticated user, as AuthMiddlewareStack puts it in the scope."""

    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.username = f"user{pk}"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_handler_bucket_shared_by_user(connect: Connect) -> None:
    user = User(pk=17)
    first = await mounted(connect, SearchView, user=user, ip="198.51.100.1")
    second = await mounted(connect, SearchView, user=user, ip="198.51.100.2")

    results = []
    for index in range(10):
        communicator = first if index % 2 == 0 else second
        reply = await send(communicator, {"type": "event", "event": "search", "params": {}})
        results.append(reply["type"])

    # search has burst 5 at 0.01 tokens/s: one user gets 5 calls, whatever the socket.
    assert results.count("render") == 5
    assert results.count("rate_limit_exceeded") == 5
    assert results[:5] == ["render"] * 5


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_handler_bucket_per_user(connect: Connect) -> None:
    first = await mounted(connect, SearchView, user=User(pk=1))
    second = await mounted(connect, SearchView, user=User(pk=2))

    for _ in range(5):
        assert (await send(first, {"type": "event", "event": "search"}))["type"] == "render"

    reply = await send(second, {"type": "event", "event": "search"})
    assert reply["type"] == "render"


@override_settings(LIVEVIEW_CONFIG=config(rate_limit={"max_warnings": 3, "reconnect_cooldown": 30}))
async def test_warnings_close_4429_then_cooldown(connect: Connect) -> None:
    communicator = await mounted(connect, ip="203.0.113.9")

    for _ in range(2):
        reply = await send(communicator, {"type": "event", "event": "__init__"})
        assert reply["error"] == "invalid_event_name"
    third = await send(communicator, {"type": "event", "event": "_secret"})
    assert third["error"] == "invalid_event_name"
    await expect_close(communicator, 4429)

    retry = await connect(ip="203.0.113.9")
    rejected = await receive(retry)
    assert rejected["type"] == "connection_rejected"
    assert rejected["reason"] == "cooldown"
    assert 29 < rejected["retry_after"] <= 30
    await expect_close(retry, 4429)

    other_ip = await connect(ip="203.0.113.10")
    assert (await send(other_ip, {"type": "ping"}))["type"] == "pong"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_frames_after_close_dropped(connect: Connect) -> None:
    communicator = await connect()
    await send(communicator, {"type": "mount", "token": "bad"})
    await expect_close(communicator, 4403)

    await communicator.send_to(text_data=json.dumps({"type": "ping"}))

    assert await communicator.receive_nothing(timeout=0.2)


@override_settings(LIVEVIEW_CONFIG=config(rate_limit={"max_connections_per_ip": 10}))
async def test_eleventh_connection_refused(connect: Connect, backend: SpyBackend) -> None:
    ip = "192.0.2.44"
    admitted = [await connect(ip=ip) for _ in range(10)]

    refused = await connect(ip=ip)
    rejected = await receive(refused)
    assert rejected["type"] == "connection_rejected"
    assert rejected["reason"] == "limit"
    assert rejected["retry_after"] == 5
    await expect_close(refused, 4429)
    await refused.disconnect()
    assert backend.calls.get("release_connection", 0) == 0

    # The refused attempt freed nothing: the IP is still full.
    still_full = await connect(ip=ip)
    assert (await receive(still_full))["reason"] == "limit"

    await admitted[0].disconnect()
    assert backend.calls["release_connection"] == 1
    fresh = await connect(ip=ip)
    assert (await send(fresh, {"type": "ping"}))["type"] == "pong"


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_lease_released_once(connect: Connect, backend: SpyBackend) -> None:
    communicator = await connect()

    await communicator.disconnect()
    await communicator.disconnect()

    assert backend.calls["release_connection"] == 1


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_lease_released_when_receive_raises(backend: SpyBackend) -> None:
    class CrashingConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

        async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
            raise RuntimeError("bug outside the frame boundary")

    communicator = WebsocketCommunicator(CrashingConsumer.as_asgi(), "/ws/liveview/")
    communicator.scope["client"] = ("198.51.100.99", 1234)
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(text_data="{}")
    with pytest.raises(RuntimeError, match="bug outside the frame boundary"):
        await communicator.wait(timeout=5)

    assert backend.calls["release_connection"] == 1
    assert (await backend.admit_connection("198.51.100.99", "probe", 1)).admitted


@override_settings(LIVEVIEW_CONFIG=config(rate_limit={"max_warnings": 2}))
async def test_client_gone_mid_reply_logs_no_error(
    backend: SpyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    class VanishingClientConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

        async def send(
            self, text_data: Any = None, bytes_data: Any = None, close: Any = False
        ) -> None:
            raise ConnectionResetError("client went away")

    communicator = WebsocketCommunicator(VanishingClientConsumer.as_asgi(), "/ws/liveview/")
    communicator.scope["client"] = ("198.51.100.77", 1234)
    connected, _ = await communicator.connect()
    assert connected

    for _ in range(3):
        await communicator.send_to(text_data='{"type": "event", "event": "__init__"}')
    await communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    await communicator.wait(timeout=5)

    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert backend.calls["release_connection"] == 1


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_rejected_frames_skip_db_thread(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.consumer

    calls: list[str] = []

    async def counting_close() -> None:
        calls.append("close")

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting_close)
    communicator = await connect()

    for frame in ('{"type": "ping"}', "[]", '{"type": "event", "event": "__init__"}'):
        await communicator.send_to(text_data=frame)
        await receive(communicator)

    assert calls == []
