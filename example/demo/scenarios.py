"""The four demo scenarios, each a coroutine that drives real WebSocket traffic.

Each scenario takes a `Target` (the workers' ports and the limits they were
started with) and returns a small result dataclass with the configured limit,
what was observed and whether the limit held. The tests in tests/multiprocess
call the same functions and assert on the same fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .client import (
    Attempt,
    DemoError,
    attempt_connection,
    close_attempts,
    fetch_mount_token,
    receive_frame,
    receive_reply,
    send_frame,
    wait_closed,
)

COUNTER_PATH = "/counter/"
SEARCH_PATH = "/search/"
CLOSE_ABUSE = 4429

# The handler limit of SearchView.search in example/shop/views.py,
# `@rate_limit(rate=2, burst=5)`. No environment variable changes it.
SEARCH_RATE = 2.0
SEARCH_BURST = 5

# Accepted searches may exceed burst + rate * elapsed by one token, because the
# client's elapsed time and the Redis clock start a few milliseconds apart.
TIMING_SLACK_TOKENS = 1

# A scenario that waits for a cooldown or a lease to lapse polls this often.
POLL_INTERVAL = 0.2
# Extra seconds a waiting scenario allows beyond the time the limit promises,
# for process scheduling on a busy machine.
WAIT_SLACK = 1.0
# Polling stops this long after the promised time, so a limit that never
# lifts ends the scenario instead of hanging it.
POLL_GIVE_UP = 5.0
# The cooldown may appear to lift this much early, because the client starts
# its clock when the close arrives, just after the server started the cooldown.
EARLY_TOLERANCE = 0.5


@dataclass(frozen=True)
class DemoConfig:
    """The limits the demo workers run with, passed to them as DJUST_* variables."""

    max_connections_per_ip: int = 10
    connection_rate: float = 100.0
    connection_burst: int = 20
    max_warnings: int = 3
    reconnect_cooldown: float = 3.0
    lease_ttl: float = 3.0

    @property
    def renew_interval(self) -> float:
        """Seconds between lease renewals: djust_dist renews three times per lease_ttl."""
        return self.lease_ttl / 3

    def worker_env(self) -> dict[str, str]:
        """Return the environment overrides that start a worker with these limits."""
        return {
            # The demo client connects straight to each worker's port, with no proxy
            # and no X-Forwarded-For, so the socket peer is the client.
            "DJUST_TRUSTED_PROXIES": "0",
            "DJUST_MAX_CONNECTIONS_PER_IP": str(self.max_connections_per_ip),
            "DJUST_RATE": str(self.connection_rate),
            "DJUST_BURST": str(self.connection_burst),
            "DJUST_MAX_WARNINGS": str(self.max_warnings),
            "DJUST_RECONNECT_COOLDOWN": str(self.reconnect_cooldown),
            "DJUST_LEASE_TTL": str(self.lease_ttl),
        }


@dataclass(frozen=True)
class Target:
    """The workers of one running stack, in the order a round-robin balancer uses."""

    ports: tuple[int, ...]
    config: DemoConfig

    def port(self, index: int) -> int:
        """Return the port the index-th connection goes to under round-robin."""
        return self.ports[index % len(self.ports)]

    async def mount_token(self, path: str) -> str:
        return await asyncio.to_thread(fetch_mount_token, self.ports[0], path)


async def gather_attempts(attempts: Sequence[Awaitable[Attempt]]) -> list[Attempt]:
    """Run connection attempts concurrently; on any failure close the admitted ones."""
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    admitted = [outcome for outcome in outcomes if isinstance(outcome, Attempt)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            await close_attempts(admitted)
            raise outcome
    return admitted


def count_per_port(attempts: Sequence[Attempt], ports: Sequence[int]) -> tuple[int, ...]:
    return tuple(sum(1 for a in attempts if a.admitted and a.port == port) for port in ports)


@dataclass(frozen=True)
class ConnectionLimitResult:
    """Scenario 1: concurrent connections from one IP against the per-IP limit."""

    limit: int
    attempted: int
    admitted: int
    admitted_per_worker: tuple[int, ...]
    refusals: tuple[tuple[str | None, int | None], ...]

    @property
    def held(self) -> bool:
        expected = min(self.limit, self.attempted)
        refused_properly = all(refusal == ("limit", CLOSE_ABUSE) for refusal in self.refusals)
        return self.admitted == expected and refused_properly

    @property
    def configured(self) -> str:
        return f"{self.limit} connections per IP"

    @property
    def observed(self) -> str:
        spread = "+".join(str(count) for count in self.admitted_per_worker)
        return f"{self.admitted} of {self.attempted} admitted ({spread})"


async def connection_limit(target: Target, connections: int = 15) -> ConnectionLimitResult:
    """Open `connections` sockets from one IP at once, spread over every worker.

    Every admitted socket stays open until all attempts have finished, so each
    one keeps its slot while the others are decided.
    """
    token = await target.mount_token(COUNTER_PATH)
    attempts = await gather_attempts(
        [attempt_connection(target.port(index), token) for index in range(connections)]
    )
    try:
        return ConnectionLimitResult(
            limit=target.config.max_connections_per_ip,
            attempted=connections,
            admitted=sum(1 for attempt in attempts if attempt.admitted),
            admitted_per_worker=count_per_port(attempts, target.ports),
            refusals=tuple(
                (attempt.reason, attempt.close_code) for attempt in attempts if not attempt.admitted
            ),
        )
    finally:
        await close_attempts(attempts)


@dataclass(frozen=True)
class SearchTally:
    """Replies to the search events of one connection."""

    accepted: int = 0
    denied: int = 0
    closed_early: bool = False


@dataclass(frozen=True)
class SearchBudgetResult:
    """Scenario 2: one caller's searches from many connections against one handler bucket."""

    rate: float
    burst: int
    connections: int
    elapsed: float
    accepted: int
    denied: int
    closed_early: int

    @property
    def allowed(self) -> float:
        """Maximum number of searches the handler bucket may pass in `elapsed` seconds."""
        return self.burst + self.rate * self.elapsed + TIMING_SLACK_TOKENS

    @property
    def held(self) -> bool:
        return self.accepted <= self.allowed and self.closed_early == 0

    @property
    def configured(self) -> str:
        return f"search: burst {self.burst} + {self.rate:g}/s"

    @property
    def observed(self) -> str:
        return (
            f"{self.accepted} accepted in {self.elapsed:.1f} s "
            f"(at most {int(self.allowed)}), {self.denied} denied"
        )


async def hammer_search(
    socket: ClientConnection, deadline: float, interval: float, query: str
) -> SearchTally:
    """Send `search` events one at a time until the deadline and count the replies."""
    accepted = denied = 0
    ref = 0
    while time.monotonic() < deadline:
        ref += 1
        try:
            await send_frame(
                socket, {"type": "event", "event": "search", "params": {"query": query}, "ref": ref}
            )
            reply = await receive_reply(socket, ref)
        except ConnectionClosed:
            return SearchTally(accepted, denied, closed_early=True)

        if reply.get("type") == "render":
            accepted += 1
        elif reply.get("type") == "rate_limit_exceeded":
            denied += 1
        else:
            raise DemoError(f"unexpected reply to a search event: {reply}")
        await asyncio.sleep(interval)
    return SearchTally(accepted, denied)


async def search_budget(
    target: Target, connections: int = 10, duration: float = 5.0
) -> SearchBudgetResult:
    """Hammer the rate-limited `search` handler from many connections of one caller.

    Every connection comes from 127.0.0.1, and anonymous callers are keyed by
    IP, so all of them draw on one handler bucket. Each connection sends at half
    its own bucket's rate, so the per-connection limit never denies a frame and
    only the handler limit is measured.
    """
    config = target.config
    interval = 2 / config.connection_rate
    token = await target.mount_token(SEARCH_PATH)
    attempts = await gather_attempts(
        [attempt_connection(target.port(index), token) for index in range(connections)]
    )
    try:
        sockets = [attempt.socket for attempt in attempts if attempt.socket is not None]
        if len(sockets) < connections:
            raise DemoError(f"only {len(sockets)} of {connections} search connections admitted")

        started = time.monotonic()
        tallies = await asyncio.gather(
            *(
                hammer_search(socket, started + duration, interval, query=f"q{index}")
                for index, socket in enumerate(sockets)
            )
        )
        elapsed = time.monotonic() - started
    finally:
        await close_attempts(attempts)

    return SearchBudgetResult(
        rate=SEARCH_RATE,
        burst=SEARCH_BURST,
        connections=connections,
        elapsed=elapsed,
        accepted=sum(tally.accepted for tally in tallies),
        denied=sum(tally.denied for tally in tallies),
        closed_early=sum(1 for tally in tallies if tally.closed_early),
    )


@dataclass(frozen=True)
class Reclaim:
    """Connections admitted while polling for a limit to lift, and when."""

    attempts: tuple[Attempt, ...]
    refusal_reasons: tuple[str | None, ...]
    first_admitted_after: float | None
    all_admitted_after: float | None


async def poll_until_admitted(
    ports: Sequence[int], token: str, wanted: int, since: float, give_up_after: float
) -> Reclaim:
    """Try to connect round-robin until `wanted` sockets are admitted or time is up.

    Times are seconds after `since` (a time.monotonic() value). The admitted
    sockets stay open; the caller closes them.
    """
    admitted: list[Attempt] = []
    reasons: list[str | None] = []
    first_after: float | None = None
    index = 0
    try:
        while len(admitted) < wanted and time.monotonic() - since < give_up_after:
            attempt = await attempt_connection(ports[index % len(ports)], token)
            index += 1
            if attempt.admitted:
                admitted.append(attempt)
                if first_after is None:
                    first_after = time.monotonic() - since
                continue
            reasons.append(attempt.reason)
            await asyncio.sleep(POLL_INTERVAL)
    except BaseException:
        await close_attempts(admitted)
        raise

    all_after = time.monotonic() - since if len(admitted) >= wanted else None
    return Reclaim(tuple(admitted), tuple(reasons), first_after, all_after)


@dataclass(frozen=True)
class CooldownResult:
    """Scenario 3: an abuse close, then reconnects during and after the cooldown."""

    cooldown: float
    close_code: int | None
    invalid_frames: int
    refusals_per_worker: tuple[str | None, ...]
    readmitted_after: float | None

    @property
    def held(self) -> bool:
        if self.close_code != CLOSE_ABUSE or self.readmitted_after is None:
            return False
        refused_everywhere = all(reason == "cooldown" for reason in self.refusals_per_worker)
        lifted_on_time = (
            self.cooldown - EARLY_TOLERANCE
            <= self.readmitted_after
            <= self.cooldown + WAIT_SLACK + POLL_INTERVAL
        )
        return refused_everywhere and lifted_on_time

    @property
    def configured(self) -> str:
        return f"4429, then {self.cooldown:g} s cooldown on every worker"

    @property
    def observed(self) -> str:
        refused = sum(1 for reason in self.refusals_per_worker if reason == "cooldown")
        readmitted = (
            "never readmitted"
            if self.readmitted_after is None
            else f"readmitted after {self.readmitted_after:.1f} s"
        )
        return (
            f"closed {self.close_code} after {self.invalid_frames} invalid events; "
            f"cooldown refusals on {refused}/{len(self.refusals_per_worker)} workers; "
            f"{readmitted}"
        )


async def flood_invalid_events(socket: ClientConnection, max_frames: int) -> tuple[int, int | None]:
    """Send events with invalid names until the server closes the socket.

    Returns the number of events that the server rejected with an error frame,
    and the close code.
    """
    answered = 0
    with contextlib.suppress(ConnectionClosed):
        for ref in range(1, max_frames + 1):
            await send_frame(socket, {"type": "event", "event": "Not-A-Name", "ref": ref})
            reply = await receive_frame(socket)
            if reply.get("error") != "invalid_event_name":
                raise DemoError(f"expected invalid_event_name, got {reply}")
            answered += 1
    return answered, await wait_closed(socket)


async def abuse_cooldown(target: Target) -> CooldownResult:
    """Get one connection closed for abuse, then reconnect to every worker until admitted."""
    config = target.config
    token = await target.mount_token(COUNTER_PATH)
    attempt = await attempt_connection(target.ports[0], token)
    if attempt.socket is None:
        raise DemoError(f"the flooding connection was refused: {attempt.reason}")

    answered, close_code = await flood_invalid_events(attempt.socket, config.max_warnings + 5)
    closed_at = time.monotonic()

    refusals = [await attempt_connection(port, token) for port in target.ports]
    await close_attempts(refusals)
    reclaim = await poll_until_admitted(
        target.ports, token, 1, closed_at, config.reconnect_cooldown + POLL_GIVE_UP
    )
    await close_attempts(reclaim.attempts)

    return CooldownResult(
        cooldown=config.reconnect_cooldown,
        close_code=close_code,
        invalid_frames=answered,
        refusals_per_worker=tuple(refusal.reason for refusal in refusals),
        readmitted_after=reclaim.first_admitted_after,
    )


@dataclass(frozen=True)
class LeaseResult:
    """Scenario 4: slots held by a worker killed with SIGKILL, until their leases lapse."""

    limit: int
    lease_ttl: float
    renew_interval: float
    filled: int
    refusal_after_kill: str | None
    first_admitted_after: float | None
    all_admitted_after: float | None

    @property
    def deadline(self) -> float:
        """Seconds after the kill by which every slot must be free again."""
        return self.lease_ttl + self.renew_interval + WAIT_SLACK

    @property
    def held(self) -> bool:
        return (
            self.filled == self.limit
            and self.refusal_after_kill == "limit"
            and self.all_admitted_after is not None
            and self.all_admitted_after <= self.deadline
        )

    @property
    def configured(self) -> str:
        return f"slots free within lease_ttl {self.lease_ttl:g} s"

    @property
    def observed(self) -> str:
        if self.all_admitted_after is None:
            regained = "slots never freed"
        else:
            regained = f"all {self.limit} admitted again after {self.all_admitted_after:.1f} s"
        return f"{self.filled} held, killed; refused ({self.refusal_after_kill}), {regained}"


async def lease_expiry(target: Target, kill_first_worker: Callable[[], Any]) -> LeaseResult:
    """Fill the IP's limit on the first worker, SIGKILL it, and wait for the slots.

    `kill_first_worker` kills the process behind `target.ports[0]` and returns
    once it is dead, so the worker never releases its connections' leases.
    """
    config = target.config
    if len(target.ports) < 2:
        raise ValueError("the lease scenario needs at least 2 workers: one is killed")
    survivors = target.ports[1:]
    limit = config.max_connections_per_ip

    token = await target.mount_token(COUNTER_PATH)
    held = await gather_attempts([attempt_connection(target.ports[0], token) for _ in range(limit)])
    try:
        filled = sum(1 for attempt in held if attempt.admitted)
        await asyncio.to_thread(kill_first_worker)
        killed_at = time.monotonic()
        probe = await attempt_connection(survivors[0], token)
        await close_attempts([probe])
        reclaim = await poll_until_admitted(
            survivors, token, limit, killed_at, config.lease_ttl + POLL_GIVE_UP
        )
        await close_attempts(reclaim.attempts)
    finally:
        # Sockets to the killed worker are dead; closing them frees nothing there.
        await close_attempts(held)

    return LeaseResult(
        limit=limit,
        lease_ttl=config.lease_ttl,
        renew_interval=config.renew_interval,
        filled=filled,
        refusal_after_kill=probe.reason,
        first_admitted_after=reclaim.first_admitted_after,
        all_admitted_after=reclaim.all_admitted_after,
    )
