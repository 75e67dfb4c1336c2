"""The example served by one uvicorn process, driven by a plain WebSocket client."""

from __future__ import annotations

import pytest
from demo.client import attempt_connection, fetch_mount_token, receive_reply, send_frame
from demo.scenarios import COUNTER_PATH, DemoConfig

from tests.multiprocess.conftest import StartStack

pytestmark = [pytest.mark.multiprocess, pytest.mark.redis, pytest.mark.slow]


async def test_counter_increments_three_times(start_stack: StartStack) -> None:
    stack = start_stack(DemoConfig(), workers=1)
    port = stack.started[0].port

    token = fetch_mount_token(port, COUNTER_PATH)
    attempt = await attempt_connection(port, token)
    assert attempt.socket is not None
    replies = []
    try:
        for ref in (1, 2, 3):
            await send_frame(attempt.socket, {"type": "event", "event": "increment", "ref": ref})
            replies.append(await receive_reply(attempt.socket, ref))
    finally:
        await attempt.socket.close()

    assert [reply["type"] for reply in replies] == ["render"] * 3
    html = replies[-1]["html"]
    assert 'data-count="3"' in html
    assert ">3</output>" in html
