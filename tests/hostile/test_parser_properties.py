"""Property-based tests of the frame parser, the size check, the name guard and encode()."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from djust_dist.security.names import is_valid_event_name
from djust_dist.transport import protocol
from djust_dist.transport.protocol import FRAME_TYPES, MAX_REF_LENGTH, Frame, FrameError

EXAMPLES = settings(max_examples=300, deadline=None)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
frame_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(sorted(FRAME_TYPES)) | json_values,
        "event": st.text(max_size=70) | json_values,
        "params": json_values,
        "ref": json_values,
        "token": json_values,
    },
)


def parse_or_error(text: str) -> Frame | FrameError:
    try:
        return protocol.parse_frame(text)
    except FrameError as exc:
        return exc


def assert_valid_frame(frame: Frame) -> None:
    assert frame.type in FRAME_TYPES
    assert isinstance(frame.params, dict)
    ref: Any = frame.ref
    assert ref is None or isinstance(ref, int | float | str)
    assert not isinstance(ref, bool)
    if isinstance(ref, str):
        assert len(ref) <= MAX_REF_LENGTH


@EXAMPLES
@given(st.text())
def test_any_text_parses_or_fails_cleanly(text: str) -> None:
    result = parse_or_error(text)

    if isinstance(result, FrameError):
        assert result.code == "invalid_message"
    else:
        assert_valid_frame(result)


@EXAMPLES
@given(frame_like)
def test_frame_shaped_json_parses_or_fails_cleanly(data: dict[str, Any]) -> None:
    result = parse_or_error(json.dumps(data))

    if isinstance(result, FrameError):
        assert result.code == "invalid_message"
    else:
        assert_valid_frame(result)
        assert result.type == data["type"]


@EXAMPLES
@given(st.binary(max_size=200))
def test_decoded_bytes_parse_or_fail_cleanly(raw: bytes) -> None:
    # What a lenient server would hand over for invalid UTF-8: lone surrogates.
    text = raw.decode("utf-8", "surrogateescape")

    result = parse_or_error(text)

    assert isinstance(result, Frame | FrameError)


@EXAMPLES
@given(st.text(), st.integers(min_value=1, max_value=400))
def test_size_check_matches_utf8_length(text: str, limit: int) -> None:
    encoded_length = len(text.encode("utf-8", "surrogatepass"))

    assert protocol.exceeds_size(text, limit) == (encoded_length > limit)
    assert not protocol.exceeds_size(text, 0)


@EXAMPLES
@given(st.text(max_size=80) | st.from_regex(r"[a-z][a-z0-9_]{0,70}\n?", fullmatch=True))
def test_name_guard_is_ascii_pattern(name: str) -> None:
    expected = len(name) <= 64 and re.fullmatch(r"[a-z][a-z0-9_]*", name, re.ASCII) is not None

    assert is_valid_event_name(name) == expected


@EXAMPLES
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=5))
def test_encode_is_always_utf8(payload: dict[str, Any]) -> None:
    text = protocol.encode(payload)

    text.encode("utf-8")
    assert json.loads(text) == json.loads(json.dumps(payload))


def test_deep_nesting_rejected() -> None:
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        result = parse_or_error(text)

        assert isinstance(result, FrameError)
        assert result.code == "invalid_message"


def test_huge_and_non_finite_numbers_rejected() -> None:
    for number in ("9" * 10_000, "-" + "9" * 10_000, "NaN", "Infinity", "-Infinity", "1e400"):
        result = parse_or_error(f'{{"type":"event","event":"x","params":{{"n":{number}}}}}')

        assert isinstance(result, FrameError), number
        assert result.code == "invalid_message"


def test_lone_surrogate_ref_encodes_as_escape() -> None:
    frame = protocol.parse_frame('{"type":"ping","ref":"\\ud800"}')

    text = protocol.encode(protocol.with_ref({"type": "pong"}, frame.ref))

    assert text == '{"type":"pong","ref":"\\ud800"}'
