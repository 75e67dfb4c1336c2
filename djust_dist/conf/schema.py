"""The keys of ``LIVEVIEW_CONFIG``: defaults, accepted values and validation.

Both the runtime reader (``djust_dist.conf.settings``) and the system checks
(``djust_dist.conf.checks``) use this table, so they always agree on what is valid.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, cast

from djust_dist.engine.types import MAX_RATE, MIN_RATE
from djust_dist.logutil import sanitize_for_log
from djust_dist.security.policy import EVENT_SECURITY_MODES

SETTING_NAME = "LIVEVIEW_CONFIG"
ON_ERROR_MODES = ("local", "open", "closed")

Path = tuple[str, ...]
ProblemKind = Literal["not_a_dict", "unknown_key", "type", "range", "mode", "pair", "cidr"]
ValueProblem = Literal["type", "range", "mode"]
Validator = Callable[[object], ValueProblem | None]

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "event_security": "strict",
        "max_message_size": 65536,
        "trusted_proxies": 0,
        "rate_limit": MappingProxyType(
            {
                "rate": 100,
                "burst": 20,
                "max_warnings": 3,
                "warning_window": 60,
                "max_connections_per_ip": 10,
                "reconnect_cooldown": 5,
                "ip_rate": None,
                "ip_burst": None,
            }
        ),
        "redis": MappingProxyType(
            {
                "key_prefix": "djust_dist",
                "on_error": "local",
                "timeout": 0.25,
                "lease_ttl": 30,
                "retry_interval": 1,
            }
        ),
    }
)

SECTIONS = ("rate_limit", "redis")


@dataclass(frozen=True, slots=True)
class Problem:
    """One invalid part of the configuration, found at ``path`` inside LIVEVIEW_CONFIG.

    ``path`` is empty when LIVEVIEW_CONFIG itself is the problem. ``accepted``
    describes the values that would be valid there.
    """

    kind: ProblemKind
    path: Path
    value: object
    accepted: str

    @property
    def key_path(self) -> str:
        """The setting as written in settings.py, such as LIVEVIEW_CONFIG["redis"]["timeout"]."""
        return format_key_path(self.path)


@dataclass(frozen=True, slots=True)
class Field:
    """One leaf key of LIVEVIEW_CONFIG with its validator and a description of valid values."""

    path: Path
    validate: Validator
    accepted: str

    @property
    def default(self) -> object:
        """The value used when the key is missing or invalid."""
        return default_for(self.path)


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """The effective value of every field, and the problems found on the way."""

    values: Mapping[Path, object]
    problems: tuple[Problem, ...]


def format_key_path(path: Path) -> str:
    """Write ``path`` as Python subscripts on LIVEVIEW_CONFIG."""
    return SETTING_NAME + "".join(f'["{key}"]' for key in path)


def describe_value(value: object) -> str:
    """Return a short ``repr()`` of a configured value for messages."""
    text = repr(value) if isinstance(value, str) else value
    return sanitize_for_log(text, limit=60)


def default_for(path: Path) -> object:
    """Return the default of a leaf or section path."""
    value: Any = DEFAULTS
    for key in path:
        value = value[key]
    return value


def _number(low: float, high: float = math.inf, low_inclusive: bool = True) -> Validator:
    """Accept a finite int or float between ``low`` and ``high``."""

    def validate(value: object) -> ValueProblem | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "type"
        above_low = value >= low if low_inclusive else value > low
        if not math.isfinite(value) or not above_low or value > high:
            return "range"
        return None

    return validate


def _integer(low: int) -> Validator:
    def validate(value: object) -> ValueProblem | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "type"
        return "range" if value < low else None

    return validate


def _optional(inner: Validator) -> Validator:
    def validate(value: object) -> ValueProblem | None:
        return None if value is None else inner(value)

    return validate


def _mode(choices: tuple[str, ...]) -> Validator:
    def validate(value: object) -> ValueProblem | None:
        return None if isinstance(value, str) and value in choices else "mode"

    return validate


def _key_prefix(value: object) -> ValueProblem | None:
    if not isinstance(value, str):
        return "type"
    # Braces would change the Redis Cluster hash tag of every key.
    bad_char = any(not char.isprintable() or char.isspace() or char in "{}" for char in value)
    return "range" if not value or bad_char else None


def _trusted_proxies(value: object) -> ValueProblem | None:
    if isinstance(value, list | tuple):
        return None if all(isinstance(entry, str) for entry in value) else "type"
    return _integer(0)(value)


def _choices(choices: tuple[str, ...]) -> str:
    return "one of " + ", ".join(repr(choice) for choice in choices)


_RATE_TEXT = f"a number from {MIN_RATE} to {MAX_RATE:g} (tokens per second)"

FIELDS: tuple[Field, ...] = (
    Field(("event_security",), _mode(EVENT_SECURITY_MODES), _choices(EVENT_SECURITY_MODES)),
    Field(("max_message_size",), _integer(0), "an int of at least 0 (bytes, 0 means no limit)"),
    Field(
        ("trusted_proxies",),
        _trusted_proxies,
        "an int of at least 0 (proxy hops) or a list of CIDR strings such as ['10.0.0.0/8']",
    ),
    Field(("rate_limit", "rate"), _number(MIN_RATE, MAX_RATE), _RATE_TEXT),
    Field(("rate_limit", "burst"), _integer(1), "an int of at least 1"),
    Field(("rate_limit", "max_warnings"), _integer(1), "an int of at least 1"),
    Field(
        ("rate_limit", "warning_window"),
        _number(0, low_inclusive=False),
        "a number greater than 0 (seconds)",
    ),
    Field(("rate_limit", "max_connections_per_ip"), _integer(1), "an int of at least 1"),
    Field(("rate_limit", "reconnect_cooldown"), _number(0), "a number of at least 0 (seconds)"),
    Field(
        ("rate_limit", "ip_rate"), _optional(_number(MIN_RATE, MAX_RATE)), f"None or {_RATE_TEXT}"
    ),
    Field(("rate_limit", "ip_burst"), _optional(_integer(1)), "None or an int of at least 1"),
    Field(
        ("redis", "key_prefix"),
        _key_prefix,
        "a non-empty str without whitespace, control characters or braces",
    ),
    Field(("redis", "on_error"), _mode(ON_ERROR_MODES), _choices(ON_ERROR_MODES)),
    Field(
        ("redis", "timeout"), _number(0, low_inclusive=False), "a number greater than 0 (seconds)"
    ),
    Field(
        ("redis", "lease_ttl"), _number(0, low_inclusive=False), "a number greater than 0 (seconds)"
    ),
    Field(
        ("redis", "retry_interval"),
        _number(0, low_inclusive=False),
        "a number greater than 0 (seconds)",
    ),
)


def accepted_keys(section: Path) -> tuple[str, ...]:
    """Return the keys valid directly inside ``section`` (``()`` is the top level)."""
    mapping = cast(Mapping[str, Any], default_for(section))
    return tuple(mapping)


def inspect_config(config: object) -> ConfigReport:
    """Validate a LIVEVIEW_CONFIG value and compute the effective value of every field.

    Missing and invalid fields take their default. ``trusted_proxies`` keeps its
    valid CIDRs when some entries are invalid, because trusting fewer proxies
    is the safe side.
    """
    problems: list[Problem] = []
    sections = _read_sections(config, problems)

    values: dict[Path, object] = {}
    for field in FIELDS:
        values[field.path] = _field_value(field, sections, problems)

    _check_cidrs(values, problems)
    _check_ip_bucket_pair(values, problems)
    return ConfigReport(MappingProxyType(values), tuple(problems))


def _read_sections(config: object, problems: list[Problem]) -> dict[Path, Mapping[str, Any]]:
    """Return the top level and each section as mappings; record what is not a dict."""
    if not isinstance(config, Mapping):
        problems.append(Problem("not_a_dict", (), config, "a dict"))
        config = {}
    sections: dict[Path, Mapping[str, Any]] = {(): config}
    for name in SECTIONS:
        section = config.get(name, {})
        if not isinstance(section, Mapping):
            problems.append(Problem("not_a_dict", (name,), section, "a dict"))
            section = {}
        sections[(name,)] = section

    for path, mapping in sections.items():
        _check_unknown_keys(path, mapping, problems)
    return sections


def _check_unknown_keys(section: Path, mapping: Mapping[str, Any], problems: list[Problem]) -> None:
    known = accepted_keys(section)
    for key in mapping:
        if key not in known:
            problems.append(
                Problem("unknown_key", (*section, str(key)), key, _keys_text(key, known))
            )


def _keys_text(key: object, known: tuple[str, ...]) -> str:
    text = "one of the keys " + ", ".join(repr(name) for name in known)
    close = difflib.get_close_matches(str(key), known, n=1)
    return f"{text} (did you mean {close[0]!r}?)" if close else text


def _field_value(
    field: Field, sections: Mapping[Path, Mapping[str, Any]], problems: list[Problem]
) -> object:
    section = sections[field.path[:-1]]
    key = field.path[-1]
    if key not in section:
        return field.default

    value = section[key]
    kind = field.validate(value)
    if kind is None:
        return value
    problems.append(Problem(kind, field.path, value, field.accepted))
    return field.default


def _check_cidrs(values: dict[Path, object], problems: list[Problem]) -> None:
    path = ("trusted_proxies",)
    entries = values[path]
    if not isinstance(entries, list | tuple):
        return

    valid: list[str] = []
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            problems.append(
                Problem("cidr", path, entry, "CIDR strings such as '10.0.0.0/8' or '2001:db8::/32'")
            )
            continue
        valid.append(entry)
    values[path] = tuple(valid)


def _check_ip_bucket_pair(values: dict[Path, object], problems: list[Problem]) -> None:
    """Require ``ip_rate`` and ``ip_burst`` to be set together; otherwise drop both."""
    rate_path, burst_path = ("rate_limit", "ip_rate"), ("rate_limit", "ip_burst")
    rate, burst = values[rate_path], values[burst_path]
    if (rate is None) == (burst is None):
        return

    # An invalid ip_rate or ip_burst was reported already and fell back to None.
    if any(problem.path in (rate_path, burst_path) for problem in problems):
        values[rate_path] = values[burst_path] = None
        return

    set_path, value = (rate_path, rate) if rate is not None else (burst_path, burst)
    problems.append(
        Problem(
            "pair",
            set_path,
            value,
            "ip_rate and ip_burst both None (no per-IP bucket) or both set",
        )
    )
    values[rate_path] = values[burst_path] = None
