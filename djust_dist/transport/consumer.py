"""LiveViewConsumer: the Channels consumer that runs every check before a handler."""

from __future__ import annotations

import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any

from channels.consumer import get_handler_name
from channels.db import aclose_old_connections, database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch

from djust_dist import metrics
from djust_dist.conf.runtime import get_backend
from djust_dist.conf.settings import DjustSettings, get_settings
from djust_dist.engine.base import Backend
from djust_dist.engine.types import Admission, Bucket
from djust_dist.liveview.tokens import InvalidMountToken, load_mount_token, view_path
from djust_dist.liveview.view import LiveView
from djust_dist.logutil import log_throttled, sanitize_for_log
from djust_dist.security.decorators import get_rate_limit
from djust_dist.security.names import is_valid_event_name
from djust_dist.security.policy import resolve_handler
from djust_dist.transport import protocol
from djust_dist.transport.bucket_keys import (
    connection_bucket_key,
    handler_bucket_key,
    ip_bucket_key,
)
from djust_dist.transport.client_ip import resolve_client_ip
from djust_dist.transport.kick import kick_target, listener_for
from djust_dist.transport.leases import renewer_for
from djust_dist.transport.protocol import Frame, FrameError
from djust_dist.transport.request import WebSocketRequest, caller_identity
from djust_dist.transport.warnings import WarningCounter

logger = logging.getLogger(__name__)

Handler = Callable[..., Any]


@functools.lru_cache(maxsize=4096)
def handler_signature(handler: Handler) -> inspect.Signature:
    """Return a handler's signature, computed once: every event binds its params to it."""
    return inspect.signature(handler)


class LiveViewConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Serves LiveViews over a WebSocket, behind the name guard, allowlist and limits.

    Per frame: size → shape → name guard, handler lookup, allowlist, params →
    one limiter call over every bucket of the frame → dispatch and re-render.
    Hooks for subclasses: ``get_backend``, ``get_client_ip``, ``get_caller``.
    """

    view_base: type[LiveView] = LiveView

    settings: DjustSettings
    backend: Backend
    client_ip: str
    connection_id: str
    view: LiveView | None

    def get_backend(self) -> Backend:
        """Return the limiter backend for this connection (the process-wide one)."""
        return get_backend()

    def get_client_ip(self) -> str:
        """Return the normalised client identity under the ``trusted_proxies`` setting."""
        return resolve_client_ip(self.scope, self.settings.trusted_proxies)

    def get_caller(self) -> str:
        """Return the identity that per-handler buckets are keyed by."""
        return caller_identity(self.scope, self.client_ip)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Run the consumer on the client's messages only, then release the lease.

        Unlike Channels' default, no channel-layer channel is opened per connection:
        kicks reach connections through one listener per worker (see ``kick.py``).
        """
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        self._lease_held = False
        self._kick_target: str | None = None

        # However the consumer ends (disconnect, an exception in a handler of
        # Channels itself, cancellation by the server), the lease goes back.
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await self._release_lease()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route an ASGI message to its handler method.

        Channels' default also closes stale database connections before every
        message, through a worker-thread hop. Here only views touch the
        database, and ``_run_view`` closes stale connections before each view
        call, so pings, rejected and rate-limited frames never wait for a thread.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']!r}")
        await handler(message)

    async def connect(self) -> None:
        self.settings = get_settings()
        self.backend = self.get_backend()
        self.client_ip = self.get_client_ip()
        self.connection_id = uuid.uuid4().hex
        self.view = None
        self.closed = False
        limits = self.settings.rate_limit
        self.warnings = WarningCounter(limits.max_warnings, limits.warning_window)

        admission = await self.backend.admit_connection(
            self.client_ip, self.connection_id, limits.max_connections_per_ip
        )
        if not admission.admitted:
            await self._refuse(admission)
            return

        self._lease_held = True
        metrics.connection_admitted()
        renewer_for(self.backend, self.settings.redis.lease_ttl).add(
            self.client_ip, self.connection_id
        )
        await self.accept()
        self._join_kick_group()

    async def disconnect(self, code: int) -> None:
        self.closed = True
        await self._release_lease()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closed:
            return

        try:
            await self._receive_frame(text_data, bytes_data)
        except FrameError as exc:
            await self._reject(exc)
        except Exception:
            # The boundary of one frame: whatever broke, the connection and its
            # other work go on, and the client gets a generic error frame.
            logger.exception("Processing a frame from %s failed", self.client_ip)
            metrics.frame_denied("handler_error")
            await self._send(protocol.error_frame("handler_error", "The server failed."))

    async def _receive_frame(self, text_data: str | None, bytes_data: bytes | None) -> None:
        frame = self._parse(text_data, bytes_data)

        handler = self._resolve_handler(frame) if frame.type == "event" else None

        if not await self._consume(frame, handler):
            return

        if frame.type == "ping":
            await self._send(protocol.with_ref({"type": "pong"}, frame.ref))
        elif frame.type == "mount":
            await self._mount(frame)
        elif handler is not None:
            await self._dispatch(frame, handler)

    def _parse(self, text_data: str | None, bytes_data: bytes | None) -> Frame:
        if text_data is None:
            raise FrameError("invalid_message", "binary frames are not accepted: send JSON text")

        limit = self.settings.max_message_size
        if protocol.exceeds_size(text_data, limit):
            raise FrameError("message_too_large", f"the frame exceeds {limit} bytes")

        return protocol.parse_frame(text_data)

    def _resolve_handler(self, frame: Frame) -> Handler:
        if not is_valid_event_name(frame.event):
            raise FrameError(
                "invalid_event_name",
                "event names are lower-case letters, digits and underscores, "
                "starting with a letter, at most 64 characters",
                frame.ref,
                frame.event,
            )
        if self.view is None:
            raise FrameError(
                "not_mounted", "mount a view before sending events", frame.ref, frame.event
            )

        lookup = resolve_handler(
            type(self.view), frame.event, self.settings.event_security, self.view_base
        )
        if lookup.handler is None:
            raise FrameError(
                lookup.error or "unknown_event", "no such event handler", frame.ref, frame.event
            )

        try:
            handler_signature(lookup.handler).bind(self.view, **frame.params)
        except TypeError as exc:
            raise FrameError(
                "invalid_message",
                "params do not match the handler's arguments",
                frame.ref,
                frame.event,
            ) from exc
        return lookup.handler

    def _buckets(self, frame: Frame, handler: Handler | None) -> list[Bucket]:
        limits = self.settings.rate_limit
        buckets = [Bucket(connection_bucket_key(self.connection_id), limits.rate, limits.burst)]

        if limits.ip_rate is not None and limits.ip_burst is not None:
            buckets.append(Bucket(ip_bucket_key(self.client_ip), limits.ip_rate, limits.ip_burst))

        spec = get_rate_limit(handler) if handler is not None else None
        if spec is not None and self.view is not None and isinstance(frame.event, str):
            key = handler_bucket_key(self.get_caller(), type(self.view), frame.event)
            buckets.append(Bucket(key, spec.rate, spec.burst))
        return buckets

    async def _consume(self, frame: Frame, handler: Handler | None) -> bool:
        with metrics.limiter_timer():
            decision = await self.backend.consume(self._buckets(frame, handler))
        if decision.allowed:
            metrics.frame_allowed(frame.type)
            return True

        event = frame.event if frame.type == "event" and isinstance(frame.event, str) else None
        await self._send(protocol.rate_limited_frame(event, decision.retry_after, frame.ref))
        await self._count_warning("rate_limited", event)
        return False

    async def _mount(self, frame: Frame) -> None:
        try:
            view_class, params = load_mount_token(frame.token)
        except InvalidMountToken as exc:
            self._log_rejection("invalid_token", str(exc))
            await self._send(
                protocol.error_frame("invalid_token", "the mount token is not valid", frame.ref)
            )
            await self._close(protocol.CLOSE_INVALID_TOKEN)
            return

        view = view_class()
        request = WebSocketRequest.from_scope(self.scope, self.client_ip)
        try:
            html = await self._run_view(view, view.mount, (request,), params)
        except Exception:
            logger.exception("mount() of %s failed", view_path(view_class))
            metrics.frame_denied("handler_error")
            await self._send(
                protocol.error_frame("handler_error", "mounting the view failed", frame.ref)
            )
            return

        self.view = view
        await self._send(protocol.render_frame(html, frame.ref))

    async def _dispatch(self, frame: Frame, handler: Handler) -> None:
        view = self.view
        if view is None:
            raise FrameError("not_mounted", "mount a view before sending events", frame.ref)

        try:
            html = await self._run_view(view, handler, (view,), frame.params)
        except Exception:
            logger.exception(
                "Handler %s.%s failed",
                view_path(type(view)),
                sanitize_for_log(frame.event),
            )
            metrics.frame_denied("handler_error")
            await self._send(
                protocol.error_frame("handler_error", "the event handler failed", frame.ref)
            )
            return

        await self._send(protocol.render_frame(html, frame.ref))

    async def _run_view(
        self, view: LiveView, func: Handler, args: tuple[Any, ...], params: dict[str, Any]
    ) -> str:
        """Call a handler or ``mount`` and render; sync code runs in a worker thread."""
        if inspect.iscoroutinefunction(func):
            # Sync code gets this from database_sync_to_async; an async handler
            # using the async ORM needs it here (see dispatch()).
            await aclose_old_connections()
            await func(*args, **params)
            html: str = await database_sync_to_async(view.render)()
            return html

        def call_and_render() -> str:
            func(*args, **params)
            return view.render()

        result: str = await database_sync_to_async(call_and_render)()
        return result

    async def _reject(self, exc: FrameError) -> None:
        await self._send(protocol.error_frame(exc.code, exc.message, exc.ref))
        await self._count_warning(exc.code, exc.event)

    async def _count_warning(self, kind: str, event: object) -> None:
        self._log_rejection(kind, event)
        if not self.warnings.add() or self.closed:
            return

        # The cooldown must be in force before the close frame reaches the
        # client, or an immediate reconnect would slip through.
        cooldown = self.settings.rate_limit.reconnect_cooldown
        await self.backend.start_cooldown(self.client_ip, cooldown)
        log_throttled(
            logger,
            logging.WARNING,
            "abuse_close",
            "Closing connection from %s after %d warnings; cooldown %ss",
            self.client_ip,
            len(self.warnings),
            cooldown,
        )
        metrics.connection_closed("abuse")
        await self._close(protocol.CLOSE_ABUSE)

    async def _refuse(self, admission: Admission) -> None:
        reason = admission.reason or "limit"
        metrics.connection_refused(reason)
        log_throttled(
            logger,
            logging.WARNING,
            f"refused:{reason}",
            "Refused connection from %s: %s",
            self.client_ip,
            reason,
        )

        # Browsers show a handshake rejected before accept as close code 1006
        # with no reason, so the refusal is sent over an accepted socket.
        await self.accept()
        await self._send(protocol.rejected_frame(reason, admission.retry_after))
        code = protocol.CLOSE_TRY_AGAIN_LATER if reason == "unavailable" else protocol.CLOSE_ABUSE
        await self._close(code)

    def _log_rejection(self, kind: str, detail: object) -> None:
        metrics.frame_denied(kind)
        log_throttled(
            logger,
            logging.WARNING,
            f"rejected:{kind}",
            "Rejected frame from %s: %s (%s)",
            self.client_ip,
            kind,
            sanitize_for_log(detail) if detail is not None else "no event name",
        )

    async def kick(self) -> None:
        """Close this connection with 4429 and release its lease (``manage.py djust_dist kick``)."""
        if self.closed:
            return

        log_throttled(
            logger, logging.WARNING, "kick", "Closing connection from %s: kicked", self.client_ip
        )
        metrics.connection_closed("kick")
        await self._close(protocol.CLOSE_ABUSE)
        await self._release_lease()

    def _join_kick_group(self) -> None:
        # The worker's kick listener lets `manage.py djust_dist kick` reach this
        # connection; without a channel layer there is nothing to listen on.
        if self.channel_layer is None:
            return

        self._kick_target = kick_target(self.settings.redis.key_prefix, self.client_ip)
        listener_for(self.channel_layer).register(self._kick_target, self)

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            await self.send(text_data=protocol.encode(payload))
        except OSError as exc:
            self._lost_client(exc)

    async def _close(self, code: int) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.close(code)
        except OSError as exc:
            self._lost_client(exc)

    def _lost_client(self, exc: OSError) -> None:
        # The client dropped the TCP connection while a reply was on its way
        # (uvicorn raises ClientDisconnected, an OSError). The disconnect
        # message follows and releases the lease; nothing else is to be done.
        self.closed = True
        logger.debug("Client %s went away before a reply: %r", self.client_ip, exc)

    async def _release_lease(self) -> None:
        if not getattr(self, "_lease_held", False):
            return

        self._lease_held = False
        if self._kick_target is not None and self.channel_layer is not None:
            listener_for(self.channel_layer).unregister(self._kick_target, self)
        renewer_for(self.backend, self.settings.redis.lease_ttl).discard(
            self.client_ip, self.connection_id
        )
        await self.backend.release_connection(self.client_ip, self.connection_id)
