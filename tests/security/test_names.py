"""The event name guard."""

from __future__ import annotations

import pytest

from djust_dist.security.names import MAX_EVENT_NAME_LENGTH, is_valid_event_name


@pytest.mark.parametrize(
    "name",
    ["increment", "a", "search_v2", "x1", "a" * MAX_EVENT_NAME_LENGTH, "do__it", "end_"],
)
def test_name_valid(name: str) -> None:
    assert is_valid_event_name(name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("increment\n", id="trailing-newline"),
        pytest.param("\nincrement", id="leading-newline"),
        pytest.param("a" * (MAX_EVENT_NAME_LENGTH + 1), id="65-chars"),
        pytest.param("__init__", id="dunder"),
        pytest.param("__class__", id="dunder-class"),
        pytest.param("_secret", id="private"),
        pytest.param("os.system", id="dotted"),
        pytest.param("do-it", id="dashed"),
        pytest.param("do it", id="spaced"),
        pytest.param(" increment", id="leading-space"),
        pytest.param("", id="empty"),
        pytest.param("Increment", id="upper-first"),
        pytest.param("incRement", id="upper-inside"),
        pytest.param("1st", id="digit-first"),
        pytest.param("incr\x00", id="nul"),
        pytest.param("café", id="non-ascii"),
        pytest.param("\uff49\uff4e\uff43", id="fullwidth"),
    ],
)
def test_name_invalid(name: str) -> None:
    assert not is_valid_event_name(name)


@pytest.mark.parametrize("name", [None, 1, 1.5, True, b"increment", ["increment"], {"a": 1}])
def test_name_not_str(name: object) -> None:
    assert not is_valid_event_name(name)
