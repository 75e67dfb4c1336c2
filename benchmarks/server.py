"""The Redis server a benchmark run talks to: a private redis-server when possible."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

SHARED_REDIS_URL = "redis://127.0.0.1:6379/15"
START_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Target:
    """The Redis URL a benchmark run uses, and the key prefix it owns there."""

    url: str
    key_prefix: str
    private: bool
    """Whether the server was started for this run, so nothing else touches it."""


@contextmanager
def redis_target(url: str | None) -> Iterator[Target]:
    """Yield a private redis-server on a free port, else the Redis at ``url``.

    Without redis-server installed, ``url`` (or REDIS_URL, or the local db 15)
    is used under a unique key prefix whose keys are deleted afterwards.
    """
    binary = shutil.which("redis-server")
    if url is None and binary is not None:
        with _private_server(binary) as private_url:
            yield Target(private_url, "djust_bench", private=True)
        return

    shared_url = url or os.environ.get("REDIS_URL") or SHARED_REDIS_URL
    prefix = f"djust_bench:{uuid.uuid4().hex[:12]}"
    try:
        yield Target(shared_url, prefix, private=False)
    finally:
        _delete_prefix(shared_url, prefix)


@contextmanager
def _private_server(binary: str) -> Iterator[str]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="djust-bench-") as workdir:
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            _wait_ready(url)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


def _delete_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def server_version(url: str) -> str:
    """Return the ``redis_version`` that the server at ``url`` reports."""
    with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
        return str(client.info("server")["redis_version"])


def script_calls(url: str) -> int:
    """Return how many EVALSHA and EVAL commands the server has run since it started."""
    with redis.Redis.from_url(url, socket_connect_timeout=2) as client:
        stats = client.info("commandstats")
    return sum(
        int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval")
    )
