"""The JS client in headless Chromium, against a scripted WebSocket server.

The server here is not djust_dist: each test scripts the frames and close codes
it sends, to pin down the client's reconnect, notice and focus behaviour.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.conftest import missing_infrastructure

pytestmark = [pytest.mark.browser]

CLIENT_JS = (
    Path(__file__).resolve().parents[2] / "djust_dist" / "static" / "djust_dist" / "liveview.js"
).read_text()

VIEW_HTML = '<input id="query" name="query" dj-input="search" value="{value}"><p id="n">{n}</p>'

Handler = Callable[[ServerConnection, "ScriptedServer"], None]


@dataclass
class ScriptedServer:
    """A WebSocket server on a free port that runs `handler` for every connection."""

    handler: Handler
    connect_times: list[float] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, connection: ServerConnection) -> None:
        with self.lock:
            self.connect_times.append(time.monotonic())
        try:
            self.handler(connection, self)
        except ConnectionClosed:
            pass

    def receive(self, connection: ServerConnection) -> dict[str, Any]:
        frame = json.loads(connection.recv(timeout=10))
        with self.lock:
            self.frames.append(frame)
        return dict(frame)


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    if shutil.which("chromium") is None:
        missing_infrastructure("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            yield browser.new_page()
        finally:
            browser.close()


@pytest.fixture
def start_client(chromium_page: Any) -> Iterator[Callable[[Handler], ScriptedServer]]:
    """Start a scripted server, then load a page whose root connects to it."""
    servers: list[Any] = []

    def start(handler: Handler) -> ScriptedServer:
        scripted = ScriptedServer(handler)
        server = serve(scripted.handle, "127.0.0.1", 0)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]

        chromium_page.set_content(
            f'<div data-djust-root data-djust-token="T" data-djust-ws="ws://127.0.0.1:{port}/"'
            f' data-djust-reconnect-cooldown="1">{VIEW_HTML.format(value="", n=0)}</div>'
        )
        chromium_page.add_script_tag(content=CLIENT_JS)
        return scripted

    yield start

    for server in servers:
        server.shutdown()


def mount_and_render(connection: ServerConnection, server: ScriptedServer) -> None:
    frame = server.receive(connection)
    assert frame == {"type": "mount", "token": "T"}
    connection.send(json.dumps({"type": "render", "html": VIEW_HTML.format(value="", n=0)}))


def wait_for_connects(server: ScriptedServer, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.connect_times) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} connections, got {len(server.connect_times)}")
        time.sleep(0.02)


def wait_for_frames(server: ScriptedServer, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.frames) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} frames, got {server.frames}")
        time.sleep(0.02)


def test_rejected_client_waits_retry_after(start_client: Any, chromium_page: Any) -> None:
    def reject(connection: ServerConnection, server: ScriptedServer) -> None:
        if len(server.connect_times) == 1:
            connection.send(
                json.dumps({"type": "connection_rejected", "reason": "limit", "retry_after": 1.5})
            )
            connection.close(4429, "rejected")
        else:
            mount_and_render(connection, server)
            connection.recv(timeout=10)

    server = start_client(reject)
    wait_for_connects(server, 2)

    assert server.connect_times[1] - server.connect_times[0] >= 1.5
    closes = chromium_page.evaluate("window.djustDist.closes")
    assert [close["code"] for close in closes] == [4429]


def test_abuse_close_waits_cooldown_hint(start_client: Any) -> None:
    def close_for_abuse(connection: ServerConnection, server: ScriptedServer) -> None:
        mount_and_render(connection, server)
        if len(server.connect_times) == 1:
            connection.close(4429, "abuse")
        else:
            connection.recv(timeout=10)

    server = start_client(close_for_abuse)
    wait_for_connects(server, 2)

    # The page sets data-djust-reconnect-cooldown="1".
    assert server.connect_times[1] - server.connect_times[0] >= 1.0


def test_invalid_token_stops_reconnecting(start_client: Any, chromium_page: Any) -> None:
    def refuse_token(connection: ServerConnection, server: ScriptedServer) -> None:
        server.receive(connection)
        connection.close(4403, "invalid token")

    server = start_client(refuse_token)
    chromium_page.wait_for_function("window.djustDist.state === 'stopped'", timeout=10_000)
    time.sleep(1.5)

    assert len(server.connect_times) == 1
    notice = chromium_page.locator(".djust-notice")
    assert notice.is_visible()
    assert notice.get_attribute("role") == "status"


def test_instant_drops_grow_backoff(start_client: Any, chromium_page: Any) -> None:
    def drop(connection: ServerConnection, server: ScriptedServer) -> None:
        mount_and_render(connection, server)
        connection.close(1011, "crash")

    server = start_client(drop)
    wait_for_connects(server, 4)

    gaps = [later - earlier for earlier, later in itertools.pairwise(server.connect_times)]
    # 0.5 s, 1 s, 2 s with 20 % jitter either way: each gap exceeds the one before.
    assert gaps[0] >= 0.4
    assert gaps[1] > gaps[0]
    assert gaps[2] > gaps[1]
    assert chromium_page.evaluate("window.djustDist.connectAttempts") >= 4


def test_rate_limit_shows_notice(start_client: Any, chromium_page: Any) -> None:
    def deny_events(connection: ServerConnection, server: ScriptedServer) -> None:
        mount_and_render(connection, server)
        frame = server.receive(connection)
        connection.send(
            json.dumps(
                {
                    "type": "rate_limit_exceeded",
                    "event": frame["event"],
                    "retry_after": 0.4,
                    "message": "slow down",
                    "ref": frame["ref"],
                }
            )
        )
        connection.recv(timeout=10)

    server = start_client(deny_events)
    chromium_page.wait_for_function("window.djustDist.state === 'mounted'", timeout=10_000)
    chromium_page.type("#query", "a")

    notice = chromium_page.locator(".djust-notice[role=status]")
    notice.wait_for(state="visible", timeout=5_000)
    assert "Too many requests: try again in 0.4 s" in notice.inner_text()
    notice.wait_for(state="hidden", timeout=5_000)
    event = server.frames[1]
    assert event["type"] == "event"
    assert event["event"] == "search"
    assert event["params"] == {"query": "a"}


def test_denied_input_resent_after_hold(start_client: Any, chromium_page: Any) -> None:
    def deny_first_event(connection: ServerConnection, server: ScriptedServer) -> None:
        mount_and_render(connection, server)
        first = server.receive(connection)
        connection.send(
            json.dumps(
                {
                    "type": "rate_limit_exceeded",
                    "event": "search",
                    "retry_after": 0.5,
                    "message": "slow down",
                    "ref": first["ref"],
                }
            )
        )
        server.receive(connection)
        connection.recv(timeout=10)

    server = start_client(deny_first_event)
    chromium_page.wait_for_function("window.djustDist.state === 'mounted'", timeout=10_000)
    chromium_page.type("#query", "a")
    chromium_page.wait_for_function("window.djustDist.connections[0].heldEvents.length === 1")
    chromium_page.type("#query", "bc")
    wait_for_frames(server, 3)

    events = [frame for frame in server.frames if frame["type"] == "event"]
    assert [event["params"]["query"] for event in events] == ["a", "abc"]


def test_render_keeps_focus_and_caret(start_client: Any, chromium_page: Any) -> None:
    def echo_stale_value(connection: ServerConnection, server: ScriptedServer) -> None:
        mount_and_render(connection, server)
        for n in range(1, 4):
            event = server.receive(connection)
            # The server renders an older value, as if typing had moved on.
            render = {"type": "render", "html": VIEW_HTML.format(value="x", n=n)}
            connection.send(json.dumps({**render, "ref": event["ref"]}))
        connection.recv(timeout=10)

    start_client(echo_stale_value)
    chromium_page.wait_for_function("window.djustDist.state === 'mounted'", timeout=10_000)
    chromium_page.type("#query", "abc", delay=50)
    chromium_page.wait_for_function("document.getElementById('n').textContent === '3'")

    assert chromium_page.evaluate("document.activeElement.id") == "query"
    assert chromium_page.input_value("#query") == "abc"
    assert chromium_page.evaluate("document.activeElement.selectionStart") == 3
