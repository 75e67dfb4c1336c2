"""The benchmark harness runs end to end and prints every row (speed is not checked)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_REDIS_URL

pytestmark = [pytest.mark.slow, pytest.mark.redis]

REPOSITORY = Path(__file__).resolve().parents[2]

EXPECTED_ROWS = [
    "| redis-py PING (same client) |",
    "| raw EVALSHA consume.lua (same client) |",
    "| djust_dist consume, 1 bucket |",
    "| djust_dist consume, 2 buckets |",
    "| djust_dist consume, 1 bucket, pipelining off |",
    "| limits fixed-window (redis-py) |",
    "| limits moving-window (redis-py) |",
    "| limits sliding-window-counter (redis-py) |",
    "| MemoryBackend consume, 1 bucket (in-process) |",
    "| MemoryBackend |",
    "| RedisBackend |",
    "| on |",
    "| off |",
    "bytes in",
    "| consume ÷ PING, 1 at a time |",
    "| consume ÷ PING, 50 tasks |",
    "| consume ÷ fastest limits strategy, 50 tasks |",
    "| Redis calls per denied event (flood) |",
    "| full stack: Redis ÷ memory backend |",
    "- machine:",
    "- command: `python -m benchmarks --quick`",
]


def test_quick_run_prints_every_row(redis_url: str) -> None:
    command = [sys.executable, "-m", "benchmarks", "--quick"]
    if shutil.which("redis-server") is None:
        # Without a private server the harness uses the test Redis under its own prefix.
        command += ["--redis-url", redis_url]
    env = {**os.environ, "REDIS_URL": TEST_REDIS_URL}
    env.pop("DJANGO_SETTINGS_MODULE", None)

    result = subprocess.run(
        command, cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=240
    )

    if result.returncode != 0:
        pytest.fail(f"python -m benchmarks --quick failed:\n{result.stderr[-4000:]}")
    for row in EXPECTED_ROWS:
        assert row in result.stdout, f"missing {row!r} in:\n{result.stdout}"
