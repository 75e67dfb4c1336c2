"""Fixtures that start the example as real uvicorn workers against the test Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from demo.scenarios import DemoConfig, Target
from demo.stack import Stack

StartStack = Callable[..., Stack]


@pytest.fixture
def start_stack(redis_url: str, key_prefix: str, tmp_path: Path) -> Iterator[StartStack]:
    """Start stacks under this test's key prefix; every one is stopped after the test.

    `use_redis=False` starts workers without REDIS_URL, each limiting in-process.
    """
    stacks: list[Stack] = []

    def start(config: DemoConfig, workers: int = 3, use_redis: bool = True) -> Stack:
        stack = Stack(
            workers=workers,
            log_dir=tmp_path / f"stack{len(stacks)}",
            redis_url=redis_url if use_redis else None,
            use_redis=use_redis,
            key_prefix=key_prefix,
            extra_env=config.worker_env(),
        )
        stacks.append(stack)
        stack.start()
        return stack

    yield start

    for stack in stacks:
        stack.stop()


def target_of(stack: Stack, config: DemoConfig) -> Target:
    return Target(tuple(worker.port for worker in stack.started), config)
