"""Helpers for the background tasks that transport code keeps per event loop."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has ended.

    The task's own CancelledError is absorbed, but a cancellation of the caller
    while it waits is re-raised.
    """
    if task is None or task.done():
        return

    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
