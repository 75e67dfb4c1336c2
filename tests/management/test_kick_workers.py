"""``manage.py djust_dist kick`` closes one IP's connections on two real uvicorn workers."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo.stack import REPO_DIR, Stack, worker_env
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import missing_infrastructure

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

KEY_PREFIX = f"djust_dist_test:kick:{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        missing_infrastructure("redis-server is not installed (apt-get install redis-server)")
    log_dir: Path = tmp_path_factory.mktemp("kick-logs")
    with Stack(workers=2, log_dir=log_dir, key_prefix=KEY_PREFIX) as running:
        yield running


def manage(stack: Stack, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``example/manage.py`` with the environment the workers have."""
    assert stack.redis_url is not None
    env = worker_env(
        redis_url=stack.redis_url,
        db_path=tmp_path / "unused.sqlite3",
        secret_key="unused-by-this-command",
        key_prefix=KEY_PREFIX,
    )
    return subprocess.run(
        [sys.executable, "example/manage.py", *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def open_socket(port: int) -> ClientConnection:
    """Connect straight to one worker (client IP 127.0.0.1) and check that it replies to a ping."""
    origin = f"http://127.0.0.1:{port}"
    socket = await connect(f"ws://127.0.0.1:{port}/ws/liveview/", origin=origin, open_timeout=5)
    await socket.send(json.dumps({"type": "ping"}))
    reply = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert reply["type"] == "pong", reply
    return socket


async def live_connections(stack: Stack, tmp_path: Path, expected: int) -> int:
    """Poll ``inspect`` (at most 20 times, 0.25 s apart) until it shows ``expected`` leases."""
    count = -1
    for _ in range(20):
        result = await asyncio.to_thread(
            manage, stack, tmp_path, "djust_dist", "inspect", "--ip", "127.0.0.1"
        )
        assert result.returncode == 0, result.stderr
        line = next(row for row in result.stdout.splitlines() if row.startswith("live connections"))
        count = int(line.rpartition(" ")[2])
        if count == expected:
            break
        await asyncio.sleep(0.25)
    return count


async def test_kick_closes_connections_on_both_workers(stack: Stack, tmp_path: Path) -> None:
    sockets = [await open_socket(worker.port) for worker in stack.started for _ in range(2)]
    try:
        assert await live_connections(stack, tmp_path, 4) == 4

        result = await asyncio.to_thread(
            manage, stack, tmp_path, "djust_dist", "kick", "--ip", "127.0.0.1"
        )
        assert result.returncode == 0, result.stderr
        assert "Sent a kick to the connections of 127.0.0.1" in result.stdout

        for socket in sockets:
            await asyncio.wait_for(socket.wait_closed(), 10)
        assert [socket.close_code for socket in sockets] == [4429] * 4
        assert await live_connections(stack, tmp_path, 0) == 0
    finally:
        for socket in sockets:
            await socket.close()


async def test_kick_with_cooldown_refuses_reconnect(stack: Stack, tmp_path: Path) -> None:
    socket = await open_socket(stack.started[0].port)

    result = await asyncio.to_thread(
        manage, stack, tmp_path, "djust_dist", "kick", "--ip", "127.0.0.1", "--cooldown", "30"
    )
    assert result.returncode == 0, result.stderr
    await asyncio.wait_for(socket.wait_closed(), 10)
    assert socket.close_code == 4429

    port = stack.started[1].port
    retry = await connect(
        f"ws://127.0.0.1:{port}/ws/liveview/", origin=f"http://127.0.0.1:{port}", open_timeout=5
    )
    async with retry:
        rejected = json.loads(await asyncio.wait_for(retry.recv(), 5))
    assert rejected["type"] == "connection_rejected"
    assert rejected["reason"] == "cooldown"

    reset = await asyncio.to_thread(
        manage, stack, tmp_path, "djust_dist", "reset", "--ip", "127.0.0.1"
    )
    assert reset.returncode == 0, reset.stderr
