"""The local demo stack: real uvicorn workers, Redis and the round-robin proxy."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo.proxy import RoundRobinProxy
from demo.stack import Stack
from websockets.asyncio.client import connect

from tests.conftest import free_port, missing_infrastructure

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

TOKEN_PATTERN = re.compile(r'data-djust-token="([^"]+)"')


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), response.read().decode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("redis-server") is None:
        missing_infrastructure("redis-server is not installed (apt-get install redis-server)")
    log_dir: Path = tmp_path_factory.mktemp("demo-logs")
    # A private redis-server, whatever REDIS_URL the suite runs with.
    with Stack(workers=3, log_dir=log_dir, redis_url=None) as running:
        yield running


def test_workers_are_separate_processes(stack: Stack) -> None:
    pids = {worker.process.pid for worker in stack.started}
    assert len(pids) == 3
    for worker in stack.started:
        assert worker.process.poll() is None, worker.name


def test_every_worker_serves_pages(stack: Stack) -> None:
    for url in stack.worker_urls:
        for path in ("/", "/counter/", "/search/", "/static/djust_dist/liveview.js"):
            status, _ = fetch(url + path)
            assert status == 200, url + path


async def test_counter_through_proxy(stack: Stack) -> None:
    proxy_port = free_port()
    server = await RoundRobinProxy([("127.0.0.1", worker.port) for worker in stack.started]).start(
        "127.0.0.1", proxy_port
    )
    base = f"127.0.0.1:{proxy_port}"
    async with server:
        # The page comes from one worker and the socket lands on the next one. The
        # fetch runs in a thread because the proxy runs on this event loop.
        _, page = await asyncio.to_thread(fetch, f"http://{base}/counter/")
        token = TOKEN_PATTERN.search(page)
        assert token is not None

        async with connect(
            f"ws://{base}/ws/liveview/", origin=f"http://{base}", open_timeout=5
        ) as socket:
            await socket.send(json.dumps({"type": "mount", "token": token.group(1)}))
            mounted = json.loads(await socket.recv())
            await socket.send(json.dumps({"type": "event", "event": "increment", "ref": 1}))
            rendered = json.loads(await socket.recv())

    assert mounted["type"] == "render"
    assert 'data-count="0"' in mounted["html"]
    assert rendered["type"] == "render"
    assert rendered["ref"] == 1
    assert 'data-count="1"' in rendered["html"]


def test_stop_ends_every_process(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        missing_infrastructure("redis-server is not installed (apt-get install redis-server)")
    with Stack(workers=3, log_dir=tmp_path, redis_url=None) as running:
        processes = [worker.process for worker in running.started]
        redis_process = running._redis_process
        assert redis_process is not None

    for process in processes:
        assert process.poll() is not None
    assert redis_process.poll() is not None
    assert running.started == []
