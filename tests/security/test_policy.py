"""The handler allowlist: resolve_handler and _allowed_events."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest

from djust_dist.security.decorators import event_handler, rate_limit
from djust_dist.security.policy import (
    HandlerLookup,
    allowed_events,
    invalid_allowed_events,
    resolve_handler,
)

MODES = ("strict", "warn", "open")


class Base:
    """Stands in for LiveView: none of its names may ever be called by a client."""

    template_name = "base.html"

    def mount(self, request: Any, **params: Any) -> None: ...

    def render(self) -> str:
        return ""

    def get_context_data(self) -> dict[str, Any]:
        return {}

    def dispatch(self, request: Any) -> None: ...

    @classmethod
    def as_view(cls) -> None: ...

    @event_handler
    def refresh(self) -> None:
        """Decorated on the base: still never callable."""


class Counter(Base):
    count = 0
    _allowed_events = ("reset", "_secret", "Bad", 7, "missing")

    @event_handler
    def increment(self) -> None: ...

    @rate_limit(2, 5)
    @event_handler
    async def search(self, query: str = "") -> None: ...

    def undecorated(self) -> None: ...

    def reset(self) -> None: ...

    def _secret(self) -> None: ...

    @event_handler
    def mount(self, request: Any, **params: Any) -> None: ...

    @event_handler
    def render(self) -> str:
        return "overridden"

    def dispatch(self, request: Any) -> None: ...

    @event_handler
    def get_context_data(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def helper() -> None: ...

    @classmethod
    def factory(cls) -> None: ...


def test_decorated_handler_found() -> None:
    lookup = resolve_handler(Counter, "increment", "strict", Base)

    assert lookup == HandlerLookup(Counter.__dict__["increment"], None, False)


def test_async_handler_found() -> None:
    lookup = resolve_handler(Counter, "search", "strict", Base)

    assert lookup.handler is Counter.__dict__["search"]
    assert lookup.handler is not None
    assert inspect.iscoroutinefunction(lookup.handler)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [None, 1, b"increment", ["increment"], "increment\n", "__init__"])
def test_invalid_name_every_mode(name: object, mode: str) -> None:
    lookup = resolve_handler(Counter, name, mode, Base)

    assert lookup.handler is None
    assert lookup.error == "invalid_event_name"


def test_missing_handler_unknown() -> None:
    lookup = resolve_handler(Counter, "nothing_here", "open", Base)

    assert lookup.handler is None
    assert lookup.error == "unknown_event"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "name", ["mount", "render", "dispatch", "get_context_data", "as_view", "refresh"]
)
def test_base_names_never_callable(name: str, mode: str) -> None:
    lookup = resolve_handler(Counter, name, mode, Base)

    assert lookup.handler is None
    assert lookup.error == "unknown_event"


@pytest.mark.parametrize("mode", MODES)
def test_base_itself_not_resolved(mode: str) -> None:
    assert resolve_handler(Base, "refresh", mode, Base).error == "unknown_event"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["count", "helper", "factory"])
def test_non_functions_rejected(name: str, mode: str) -> None:
    assert resolve_handler(Counter, name, mode, Base).error == "unknown_event"


@pytest.mark.parametrize("mode", MODES)
def test_property_never_runs(mode: str) -> None:
    calls: list[str] = []

    class Trap(Base):
        @property
        def leak(self) -> str:
            calls.append("leak")
            return "secret"

    lookup = resolve_handler(Trap, "leak", mode, Base)

    assert lookup.error == "unknown_event"
    assert calls == []


@pytest.mark.parametrize("mode", MODES)
def test_descriptor_never_runs(mode: str) -> None:
    calls: list[str] = []

    class Descriptor:
        def __get__(self, instance: object, owner: type | None = None) -> Any:
            calls.append("get")
            return lambda *args: None

    class Trap(Base):
        boom = Descriptor()

    lookup = resolve_handler(Trap, "boom", mode, Base)

    assert lookup.error == "unknown_event"
    assert calls == []


def test_metaclass_getattr_never_runs() -> None:
    calls: list[str] = []

    class Meta(type):
        def __getattr__(cls, name: str) -> Any:
            calls.append(name)
            return event_handler(lambda self: None)

    class Trap(Base, metaclass=Meta):
        pass

    lookup = resolve_handler(Trap, "anything", "open", Base)

    assert lookup.error == "unknown_event"
    assert calls == []


def test_mixin_handler_rejected() -> None:
    class Mixin:
        @event_handler
        def shared(self) -> None: ...

    class View(Mixin, Base):
        pass

    assert resolve_handler(View, "shared", "open", Base).error == "unknown_event"


def test_inherited_handler_found() -> None:
    class Child(Counter):
        pass

    lookup = resolve_handler(Child, "increment", "strict", Base)

    assert lookup.handler is Counter.__dict__["increment"]


def test_view_outside_base_rejected() -> None:
    class Stranger:
        @event_handler
        def increment(self) -> None: ...

    assert resolve_handler(Stranger, "increment", "open", Base).error == "unknown_event"


def test_allowed_events_entry_found() -> None:
    lookup = resolve_handler(Counter, "reset", "strict", Base)

    assert lookup.handler is Counter.__dict__["reset"]
    assert lookup.deprecated is False


@pytest.mark.parametrize("mode", MODES)
def test_allowed_private_never_callable(mode: str) -> None:
    lookup = resolve_handler(Counter, "_secret", mode, Base)

    assert lookup.error == "invalid_event_name"


def test_allowed_events_single_str() -> None:
    class View(Base):
        _allowed_events = "reset"

        def reset(self) -> None: ...

    assert allowed_events(View) == frozenset({"reset"})
    assert resolve_handler(View, "reset", "strict", Base).handler is View.__dict__["reset"]


def test_allowed_events_not_iterable() -> None:
    class View(Base):
        _allowed_events = 5

        def reset(self) -> None: ...

    assert allowed_events(View) == frozenset()
    assert invalid_allowed_events(View) == ["5"]
    assert resolve_handler(View, "reset", "strict", Base).error == "unknown_event"


def test_allowed_events_property_never_runs() -> None:
    calls: list[str] = []

    class View(Base):
        @property
        def _allowed_events(self) -> tuple[str, ...]:
            calls.append("get")
            return ("reset",)

        def reset(self) -> None: ...

    assert resolve_handler(View, "reset", "strict", Base).error == "unknown_event"
    assert calls == []


def test_invalid_allowed_events_listed() -> None:
    assert invalid_allowed_events(Counter) == ["_secret", "Bad", "7"]


def test_invalid_allowed_events_none() -> None:
    assert invalid_allowed_events(Base) == []


def test_strict_rejects_undecorated() -> None:
    lookup = resolve_handler(Counter, "undecorated", "strict", Base)

    assert lookup.handler is None
    assert lookup.error == "unknown_event"


def test_open_allows_undecorated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="djust_dist"):
        lookup = resolve_handler(Counter, "undecorated", "open", Base)

    assert lookup.handler is Counter.__dict__["undecorated"]
    assert lookup.deprecated is False
    assert caplog.records == []


def test_warn_logs_once_per_class_and_name(caplog: pytest.LogCaptureFixture) -> None:
    class View(Base):
        def first(self) -> None: ...

        def second(self) -> None: ...

    class Other(View):
        pass

    with caplog.at_level(logging.WARNING, logger="djust_dist"):
        lookups = [resolve_handler(View, "first", "warn", Base) for _ in range(5)]
        resolve_handler(View, "second", "warn", Base)
        resolve_handler(Other, "first", "warn", Base)

    assert all(lookup.handler is View.__dict__["first"] for lookup in lookups)
    assert all(lookup.deprecated for lookup in lookups)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert sum(".View.first " in message for message in messages) == 1
    assert sum(".View.second " in message for message in messages) == 1
    assert sum(".Other.first " in message for message in messages) == 1
    assert all(record.levelno == logging.WARNING for record in caplog.records)


def test_warn_decorated_not_deprecated(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="djust_dist"):
        lookup = resolve_handler(Counter, "increment", "warn", Base)

    assert lookup.deprecated is False
    assert caplog.records == []


@pytest.mark.parametrize("mode", ["paranoid", "", "STRICT", None, 1])
def test_invalid_mode_is_strict(mode: Any) -> None:
    assert resolve_handler(Counter, "undecorated", mode, Base).error == "unknown_event"
    assert resolve_handler(Counter, "increment", mode, Base).handler is not None
