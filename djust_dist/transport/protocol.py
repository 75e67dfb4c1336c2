"""The JSON wire protocol: parsing client frames and building server frames."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

FrameType = Literal["mount", "event", "ping"]
ErrorCode = Literal[
    "message_too_large",
    "invalid_message",
    "invalid_event_name",
    "unknown_event",
    "not_mounted",
    "invalid_token",
    "handler_error",
]

FRAME_TYPES: frozenset[str] = frozenset({"mount", "event", "ping"})
MAX_REF_LENGTH = 64

CLOSE_ABUSE = 4429
CLOSE_INVALID_TOKEN = 4403
CLOSE_TRY_AGAIN_LATER = 1013

Ref = int | float | str | None


class FrameError(Exception):
    """A client frame that fails validation.

    ``ref`` is echoed when it was readable; ``event`` is the client's event name,
    kept only for the (sanitised) log line.
    """

    def __init__(
        self, code: ErrorCode, message: str, ref: Ref = None, event: object = None
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.ref = ref
        self.event = event


@dataclass(frozen=True, slots=True)
class Frame:
    """A validated client frame."""

    type: FrameType
    ref: Ref = None
    event: object = None
    params: dict[str, Any] = field(default_factory=dict)
    token: object = None


def exceeds_size(text: str, max_bytes: int) -> bool:
    """Tell whether ``text`` encoded as UTF-8 is longer than ``max_bytes`` (0 = no limit)."""
    if max_bytes <= 0:
        return False

    # A character takes 1 to 4 UTF-8 bytes, so most frames are decided without encoding.
    if len(text) > max_bytes:
        return True
    if len(text) * 4 <= max_bytes:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > max_bytes


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # json reads 1e400 as inf, which would reach handlers as an Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:32]} is out of range")
    return value


def decode(text: str) -> object:
    """Decode a JSON text frame, rejecting NaN/Infinity, deep nesting and huge numbers.

    Integers longer than Python's conversion limit (4300 digits by default) and
    floats that overflow to infinity are rejected too.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise FrameError("invalid_message", "the frame is not valid JSON") from exc


def _read_ref(data: dict[str, Any]) -> Ref:
    if "ref" not in data:
        return None

    ref = data["ref"]
    if isinstance(ref, bool) or not isinstance(ref, int | float | str):
        raise FrameError("invalid_message", "ref must be a number or a string")
    if isinstance(ref, float) and not math.isfinite(ref):
        raise FrameError("invalid_message", "ref must be a finite number")
    if isinstance(ref, str) and len(ref) > MAX_REF_LENGTH:
        raise FrameError("invalid_message", f"ref must be at most {MAX_REF_LENGTH} characters")
    return ref


def parse_frame(text: str) -> Frame:
    """Validate the shape of a decoded client frame; unknown extra keys are ignored."""
    data = decode(text)
    if not isinstance(data, dict):
        raise FrameError("invalid_message", "the frame must be a JSON object")

    ref = _read_ref(data)
    frame_type = data.get("type")
    if not isinstance(frame_type, str) or frame_type not in FRAME_TYPES:
        raise FrameError("invalid_message", "type must be one of: event, mount, ping", ref)

    if frame_type == "mount":
        return Frame(type="mount", ref=ref, token=data.get("token"))
    if frame_type == "ping":
        return Frame(type="ping", ref=ref)

    params = data.get("params", {})
    if not isinstance(params, dict):
        raise FrameError("invalid_message", "params must be a JSON object", ref)
    return Frame(type="event", ref=ref, event=data.get("event"), params=params)


def encode(payload: dict[str, Any]) -> str:
    """Serialise a server frame as text that is always valid UTF-8.

    A client can send lone surrogates as JSON escapes (in ``ref``, or in params
    that a template renders). Written raw they cannot be encoded as UTF-8, and
    the server would fail to send the frame, so such frames are written with
    every non-ASCII character escaped.
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    return text


def with_ref(payload: dict[str, Any], ref: Ref) -> dict[str, Any]:
    """Add the client's ``ref`` to a reply when the client sent one."""
    if ref is not None:
        payload["ref"] = ref
    return payload


def error_frame(code: ErrorCode, message: str, ref: Ref = None) -> dict[str, Any]:
    return with_ref({"type": "error", "error": code, "message": message}, ref)


def render_frame(html: str, ref: Ref = None) -> dict[str, Any]:
    return with_ref({"type": "render", "html": html}, ref)


def round_up_ms(seconds: float) -> float:
    """Round up to whole milliseconds, so a wait is never shown shorter than it is."""
    return math.ceil(max(seconds, 0.0) * 1000) / 1000


def rate_limited_frame(event: str | None, retry_after: float, ref: Ref = None) -> dict[str, Any]:
    retry_after = round_up_ms(retry_after)
    return with_ref(
        {
            "type": "rate_limit_exceeded",
            "event": event,
            "retry_after": retry_after,
            "message": f"Too many requests: try again in {retry_after:g} s.",
        },
        ref,
    )


def rejected_frame(reason: str, retry_after: float) -> dict[str, Any]:
    return {
        "type": "connection_rejected",
        "reason": reason,
        "retry_after": round_up_ms(retry_after),
    }
