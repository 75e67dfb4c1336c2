"""cancel_and_wait ends a background task without swallowing the caller's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from djust_dist.transport.tasks import cancel_and_wait


async def test_cancel_and_wait_ends_task() -> None:
    task = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    await asyncio.sleep(0)

    await cancel_and_wait(task)

    assert task.cancelled()


async def test_cancel_and_wait_accepts_none_and_done() -> None:
    done = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await done

    await cancel_and_wait(None)
    await cancel_and_wait(done)

    assert done.done()
    assert not done.cancelled()


async def test_caller_cancellation_propagates() -> None:
    started = asyncio.Event()
    cleaning_up = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            # Keeps running after its cancel, so the caller is still waiting.
            cleaning_up.set()
            await asyncio.sleep(60)

    background = asyncio.get_running_loop().create_task(stubborn())
    await started.wait()
    caller = asyncio.get_running_loop().create_task(cancel_and_wait(background))
    await asyncio.wait_for(cleaning_up.wait(), timeout=5)

    caller.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, timeout=5)
    assert background.done()
