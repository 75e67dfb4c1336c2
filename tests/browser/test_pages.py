"""The example pages in headless Chromium, against a real uvicorn worker and Redis."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from demo.scenarios import DemoConfig
from demo.stack import Stack

from tests.conftest import missing_infrastructure
from tests.multiprocess.conftest import StartStack

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.multiprocess]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000

# A short cooldown keeps the reconnect test quick; the limits are the defaults.
CONFIG = dataclasses.replace(DemoConfig(), reconnect_cooldown=2.0)

# Record every WebSocket the page opens, with performance.now() times of its
# creation and close, so the test can measure the reconnect gap on one clock and
# write frames to the client's own socket.
RECORD_SOCKETS = """
(() => {
  const NativeWebSocket = window.WebSocket;
  window.__sockets = [];
  window.__openedAt = [];
  window.__closedAt = [];
  window.WebSocket = class extends NativeWebSocket {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
      window.__openedAt.push(performance.now());
      this.addEventListener("close", () => window.__closedAt.push(performance.now()));
    }
  };
})();
"""


def chromium_path() -> str | None:
    if os.path.exists("/usr/bin/chromium"):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture
def page() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        missing_infrastructure("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            new_page = browser.new_page()
            new_page.set_default_timeout(TIMEOUT_MS)
            new_page.add_init_script(RECORD_SOCKETS)
            yield new_page
        finally:
            browser.close()


@pytest.fixture
def worker_url(start_stack: StartStack) -> str:
    stack: Stack = start_stack(CONFIG, workers=1)
    return stack.started[0].url


def open_mounted(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("window.djustDist.state === 'mounted'")


def test_counter_updates_on_click(page: Any, worker_url: str) -> None:
    from playwright.sync_api import expect

    open_mounted(page, worker_url + "/counter/")
    count = page.locator("#count")
    expect(count).to_have_text("0")

    for expected in ("1", "2", "3"):
        page.click("#increment")
        expect(count).to_have_text(expected)
    page.click("#decrement")

    expect(count).to_have_text("2")


def test_search_burst_shows_notice(page: Any, worker_url: str) -> None:
    from playwright.sync_api import expect

    open_mounted(page, worker_url + "/search/")
    page.focus("#query")
    # 18 keys at 80 ms each is 1.4 s of typing: far more searches than the burst
    # of 5 plus 2 per second allows, so the server denies some.
    page.keyboard.type("red kettle for tea", delay=80)

    notice = page.locator(".djust-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Too many requests")
    # The client paces the field after a denial and sends its newest value once
    # allowed, so the view ends on the full query and the socket stays open.
    expect(page.locator("#result-count")).to_contain_text("red kettle for tea")
    assert page.evaluate("window.djustDist.closes") == []


def test_search_long_typing_stays_open(page: Any, worker_url: str) -> None:
    from playwright.sync_api import expect

    open_mounted(page, worker_url + "/search/")
    page.focus("#query")
    text = "a blue kettle and a red apple for the long afternoon tea"

    # Steady typing for about 7 s at 120 ms per key: more than 3 denials here
    # would close the socket with 4429 (max_warnings is 3).
    page.keyboard.type(text, delay=120)

    expect(page.locator("#result-count")).to_contain_text(text, timeout=15_000)
    assert page.evaluate("window.djustDist.closes") == []


def test_abuse_close_waits_cooldown(page: Any, worker_url: str) -> None:
    open_mounted(page, worker_url + "/counter/")

    # Invalid event names on the client's own socket: the max_warnings-th one
    # closes it with 4429 and starts the IP's cooldown.
    page.evaluate(
        """(count) => {
             for (let i = 0; i < count; i++) {
               window.__sockets[0].send(JSON.stringify({type: "event", event: "Not-A-Name"}));
             }
           }""",
        CONFIG.max_warnings,
    )
    page.wait_for_function(
        "window.djustDist.connectAttempts >= 2 && window.djustDist.state === 'mounted'"
    )

    closes = page.evaluate("window.djustDist.closes")
    opened_at = page.evaluate("window.__openedAt")
    closed_at = page.evaluate("window.__closedAt")
    assert [close["code"] for close in closes] == [4429]
    assert page.evaluate("window.djustDist.connectAttempts") == 2
    assert len(opened_at) == 2
    # The reconnect came no sooner than the configured cooldown after the close,
    # so it was admitted at once instead of refused.
    gap_seconds = (opened_at[1] - closed_at[0]) / 1000
    assert gap_seconds >= CONFIG.reconnect_cooldown
