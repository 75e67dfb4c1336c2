"""Automatic pipelining of script calls: one write and one read per event-loop turn.

A call made while its loop's pipeline is idle goes to Redis at once, from the
caller's own task, so a lone request pays no extra loop turn. A call made while
another batch is queued or in flight is queued. At the next turn of the event
loop a flush task sends every queued call in one redis-py pipeline
(``transaction=False``) of EVALSHA commands and hands each caller its own reply.
Concurrent connections of one worker therefore share round trips, and no
decision changes: each call is still one script run, atomic on its own.

Failures are judged per batch. A timeout or connection error fails every call
of the batch and reaches the circuit breaker once. An error reply fails only
its own call. Replies that mean Redis cannot serve right now (``BUSY``,
``OOM``, ...) fail their calls and report one failure to the breaker.

Cancellation: a caller cancelled before its batch is written is dropped from
the batch and never reaches Redis. A caller cancelled after the write may or
may not have run its script, and nothing is undone. When the flush task itself
is cancelled (the loop shuts down), its callers are cancelled too.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    ClusterError,
    NoScriptError,
    RedisClusterUnreachableError,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from djust_dist.engine.breaker import CircuitBreaker
from djust_dist.engine.connect import RedisClient
from djust_dist.engine.scripts import Script
from djust_dist.errors import BackendUnavailable, ScriptError

ScriptArgs = list[str | int | float]

# Errors that mean Redis could not be reached in time. The builtin TimeoutError
# raised by asyncio.timeout is a subclass of OSError. The cluster errors mean
# that no node serves a slot right now (CLUSTERDOWN, a failover, redirects
# without end).
UNAVAILABLE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    RedisClusterUnreachableError,
    SlotNotCoveredError,
)

# Error replies that mean Redis cannot serve right now, rather than a broken script.
UNAVAILABLE_REPLIES = (
    "BUSY",
    "LOADING",
    "OOM",
    "READONLY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
)

# Calls per pipeline. Redis runs one connection's pipeline without serving other
# clients in between, so a bigger batch is split and its parts sent concurrently.
MAX_BATCH_SIZE = 256


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One queued script call and the future its caller awaits (None when sent directly)."""

    script: Script
    keys: list[str]
    args: ScriptArgs
    future: asyncio.Future[Any] | None = None

    @property
    def cancelled(self) -> bool:
        return self.future is not None and self.future.cancelled()


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of each call of a batch, in order: a reply, or the exception to raise."""

    outcomes: list[Any]
    failure: BaseException | None = None
    """The first error that counts as Redis being unavailable, if any."""


def classify_reply(name: str, reply: Any) -> Any:
    """Turn an error reply into BackendUnavailable or ScriptError, else return the reply."""
    if not isinstance(reply, ResponseError):
        return reply

    if is_unavailable_reply(reply):
        error: Exception = BackendUnavailable(f"Redis cannot run {name!r}: {reply}")
    else:
        error = ScriptError(name, str(reply))
    error.__cause__ = reply
    return error


def is_unavailable_reply(reply: Any) -> bool:
    """Return whether ``reply`` is an error reply that means Redis cannot serve right now."""
    if isinstance(reply, ClusterError):
        # redis-py raises CLUSTERDOWN and MASTERDOWN replies as ClusterError
        # subclasses, without the prefix in their text.
        return True
    return isinstance(reply, ResponseError) and str(reply).startswith(UNAVAILABLE_REPLIES)


async def send_calls(client: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
    """Send the calls, reloading scripts that Redis lost, and return one reply per call.

    Error replies come back as ResponseError instances in the list. Connection
    errors and timeouts are raised.
    """
    if len(calls) == 1:
        return [await _send_one(client, calls[0])]

    replies = await _evalsha_pipeline(client, calls)
    missing = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if not missing:
        return replies

    # After a restart, failover or SCRIPT FLUSH: load each lost script and repeat
    # only the calls that failed, in one more round trip.
    retried = await _evalsha_pipeline(client, [calls[index] for index in missing], reload=True)
    for index, reply in zip(missing, retried, strict=True):
        replies[index] = reply
    return replies


async def _send_one(client: RedisClient, call: ScriptCall) -> Any:
    try:
        return await call.script.run(client, call.keys, call.args)
    except ResponseError as exc:
        return exc


async def _evalsha_pipeline(
    client: RedisClient, calls: Sequence[ScriptCall], *, reload: bool = False
) -> list[Any]:
    """Send EVALSHA for every call in one pipeline, after SCRIPT LOAD of each script if asked."""
    scripts = list({call.script.sha: call.script for call in calls}.values()) if reload else []
    if scripts and isinstance(client, RedisCluster):
        # redis-py blocks SCRIPT LOAD inside a cluster pipeline. Outside one it
        # goes to every primary, so the node that lost a script gets it back.
        for script in scripts:
            await client.script_load(script.source)
        scripts = []

    pipe = client.pipeline(transaction=False)
    for script in scripts:
        pipe.script_load(script.source)
    for call in calls:
        pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)

    replies = await pipe.execute(raise_on_error=False)
    return list(replies[len(scripts) :])


class ScriptPipeline:
    """Batches the script calls of one event loop (see the module docstring).

    Use one instance per event loop: its state is touched only from that loop.
    ``timeout`` bounds one batch, including a script reload.
    """

    def __init__(
        self, get_client: Callable[[], RedisClient], breaker: CircuitBreaker, timeout: float
    ):
        self.get_client = get_client
        self.breaker = breaker
        self.timeout = timeout
        self.batches_sent = 0
        """Pipelines and direct calls written to Redis so far."""

        self._pending: list[ScriptCall] = []
        self._in_flight = 0
        self._flush_scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, script: Script, keys: list[str], args: ScriptArgs) -> Any:
        """Run one script call, batched with concurrent calls of the same loop.

        Raises BackendUnavailable when Redis fails or cannot serve, and ScriptError
        when Redis rejects this call for another reason.
        """
        if not self._pending and self._in_flight == 0:
            outcome = await self._send_directly(ScriptCall(script, keys, args))
        else:
            outcome = await self._enqueue(script, keys, args)

        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def _send_directly(self, call: ScriptCall) -> Any:
        self._in_flight += 1
        try:
            result = await self._run_batch([call])
        finally:
            self._in_flight -= 1
        return result.outcomes[0]

    def _enqueue(self, script: Script, keys: list[str], args: ScriptArgs) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(ScriptCall(script, keys, args, future))

        if not self._flush_scheduled:
            self._flush_scheduled = True
            task = loop.create_task(self._flush())
            # The loop keeps only weak references to tasks.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def _flush(self) -> None:
        """Send every call queued during the previous loop turn."""
        calls = [call for call in self._pending if not call.cancelled]
        self._pending = []
        self._flush_scheduled = False
        if not calls:
            return

        chunks = [
            calls[start : start + MAX_BATCH_SIZE] for start in range(0, len(calls), MAX_BATCH_SIZE)
        ]
        self._in_flight += 1
        try:
            await asyncio.gather(*(self._settle(chunk) for chunk in chunks))
        finally:
            self._in_flight -= 1

    async def _settle(self, calls: list[ScriptCall]) -> None:
        """Send one batch and resolve each caller's future with its own outcome."""
        try:
            result = await self._run_batch(calls)
        except BaseException as exc:
            # Every caller must be woken, whatever ended the batch.
            for call in calls:
                _fail(call, exc)
            raise

        for call, outcome in zip(calls, result.outcomes, strict=True):
            _resolve(call, outcome)

    async def _run_batch(self, calls: list[ScriptCall]) -> BatchResult:
        """Send the calls under the timeout and report the batch to the breaker once."""
        self.batches_sent += 1
        try:
            async with asyncio.timeout(self.timeout):
                replies = await send_calls(self.get_client(), calls)
        except asyncio.CancelledError:
            # Redis may or may not have run the scripts; nothing is undone.
            self.breaker.abandoned()
            raise
        except UNAVAILABLE_ERRORS as exc:
            self.breaker.failed(exc)
            return BatchResult([_unavailable(call, exc) for call in calls], failure=exc)
        except BaseException:
            self.breaker.abandoned()
            raise

        result = BatchResult(
            outcomes=[
                classify_reply(call.script.name, reply)
                for call, reply in zip(calls, replies, strict=True)
            ],
            failure=next((reply for reply in replies if is_unavailable_reply(reply)), None),
        )
        if result.failure is not None:
            self.breaker.failed(result.failure)
        else:
            self.breaker.succeeded()
        return result


def _unavailable(call: ScriptCall, cause: BaseException) -> BackendUnavailable:
    error = BackendUnavailable(f"Redis call {call.script.name!r} failed: {cause!r}")
    error.__cause__ = cause
    return error


def _resolve(call: ScriptCall, outcome: Any) -> None:
    future = call.future
    if future is None or future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _fail(call: ScriptCall, exc: BaseException) -> None:
    future = call.future
    if future is None or future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)


class LoopPipelines:
    """One ScriptPipeline per event loop, created on first use from that loop."""

    def __init__(
        self, get_client: Callable[[], RedisClient], breaker: CircuitBreaker, timeout: float
    ):
        self._get_client = get_client
        self._breaker = breaker
        self._timeout = timeout
        self._pipelines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ScriptPipeline] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> ScriptPipeline:
        """Return the pipeline of the running event loop."""
        loop = asyncio.get_running_loop()
        pipeline = self._pipelines.get(loop)
        if pipeline is None:
            pipeline = ScriptPipeline(self._get_client, self._breaker, self._timeout)
            self._pipelines[loop] = pipeline
        return pipeline

    async def call(self, script: Script, keys: list[str], args: ScriptArgs) -> Any:
        """Run one script call through the running loop's pipeline."""
        return await self.current().call(script, keys, args)
