"""Django system checks for djust_dist settings and LiveView classes.

Every message names the setting, the value found and the values accepted, and
its hint suggests what to write instead. Ids are stable:

- E001 LIVEVIEW_CONFIG or one of its sections is not a dict.
- E002 unknown key.
- E003 value of the wrong type.
- E004 value out of range.
- E005 unknown mode.
- E006 only one of ip_rate and ip_burst is set.
- E007 trusted_proxies entry that is not a CIDR network.
- E008 malformed REDIS_URL.
- E009 ``_allowed_events`` entry that fails the event name guard.
- W001 ``event_security = "open"`` with DEBUG off.
- W002 ``max_message_size = 0`` with DEBUG off.
- W003 no REDIS_URL, so limits are per process.

E010, E011, W004 and W005 connect to Redis; see ``redis_checks``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings as django_settings
from django.core import checks

from djust_dist.conf.redis_checks import check_redis_server
from djust_dist.conf.redis_url import REDIS_URL_SCHEMES, redact_url, redis_url_problem
from djust_dist.conf.schema import (
    ConfigReport,
    Problem,
    accepted_keys,
    default_for,
    describe_value,
    format_key_path,
    inspect_config,
)
from djust_dist.conf.settings import raw_config, raw_redis_url
from djust_dist.security.names import MAX_EVENT_NAME_LENGTH, is_valid_event_name
from djust_dist.security.policy import ALLOWED_EVENTS_ATTR, allowed_event_entries

TAG = "djust_dist"

_ERROR_IDS = {
    "not_a_dict": "djust_dist.E001",
    "unknown_key": "djust_dist.E002",
    "type": "djust_dist.E003",
    "range": "djust_dist.E004",
    "mode": "djust_dist.E005",
    "pair": "djust_dist.E006",
    "cidr": "djust_dist.E007",
}
REDIS_URL_ERROR_ID = "djust_dist.E008"
ALLOWED_EVENTS_ERROR_ID = "djust_dist.E009"
OPEN_MODE_WARNING_ID = "djust_dist.W001"
NO_SIZE_LIMIT_WARNING_ID = "djust_dist.W002"
NO_REDIS_WARNING_ID = "djust_dist.W003"


def register_checks() -> None:
    """Register every djust_dist check with Django (safe to call more than once)."""
    checks.register(check_liveview_config, TAG)
    checks.register(check_redis_url, TAG)
    checks.register(check_allowed_events, TAG)
    checks.register(check_redis_server, TAG)


def check_liveview_config(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Check every key of LIVEVIEW_CONFIG, and warn about unsafe production values."""
    report = inspect_config(raw_config())
    messages: list[checks.CheckMessage] = [_problem_error(problem) for problem in report.problems]
    if not django_settings.DEBUG:
        messages.extend(_production_warnings(report))
    return messages


def check_redis_url(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Check the shape of REDIS_URL, and warn when it is missing."""
    url = raw_redis_url()
    if url is None or url == "":
        return [
            checks.Warning(
                "REDIS_URL is not set, so rate limits and connection limits are kept in "
                "each process's memory and do not hold across workers.",
                hint="Set REDIS_URL (the Django setting or the environment variable) to a URL "
                'such as "redis://redis:6379/0".',
                id=NO_REDIS_WARNING_ID,
            )
        ]

    problem = redis_url_problem(url)
    if problem is None:
        return []
    redacted = describe_value(redact_url(url) if isinstance(url, str) else url)
    return [
        checks.Error(
            f"REDIS_URL is {redacted}, which is invalid: {problem}. "
            f"Accepted schemes: {', '.join(REDIS_URL_SCHEMES)}.",
            hint="Write a URL such as redis://host:6379/0, rediss://user:password@host:6380/0, "
            "unix:///run/redis.sock?db=0, redis+sentinel://host:26379,host2:26379/service/0 "
            "or redis+cluster://host:7000,host2:7000; set None to run without Redis.",
            id=REDIS_URL_ERROR_ID,
        )
    ]


def check_allowed_events(
    app_configs: Sequence[AppConfig] | None = None,
    base: type | None = None,
    **kwargs: Any,
) -> list[checks.CheckMessage]:
    """Report ``_allowed_events`` entries that fail the event name guard.

    Looks at every subclass of ``base`` (LiveView by default) that defines
    ``_allowed_events`` itself, limited to ``app_configs`` when Django passes them.
    """
    if base is None:
        # Imported here because the view module loads templates and URL helpers
        # that need the app registry to be ready.
        from djust_dist.liveview.view import LiveView

        base = LiveView

    messages: list[checks.CheckMessage] = []
    for view_class in _subclasses(base):
        if ALLOWED_EVENTS_ATTR not in view_class.__dict__ or not _in_apps(view_class, app_configs):
            continue
        for entry in allowed_event_entries(view_class):
            if not is_valid_event_name(entry):
                messages.append(_allowed_events_error(view_class, entry))
    return messages


def _problem_error(problem: Problem) -> checks.Error:
    if problem.kind == "not_a_dict":
        return _not_a_dict_error(problem)
    if problem.kind == "unknown_key":
        return _unknown_key_error(problem)
    if problem.kind == "pair":
        return _pair_error(problem)
    if problem.kind == "cidr":
        return _cidr_error(problem)
    return _value_error(problem)


def _value_error(problem: Problem) -> checks.Error:
    default = describe_value(default_for(problem.path))
    return checks.Error(
        f"{problem.key_path} must be {problem.accepted}, "
        f"got {describe_value(problem.value)} ({type(problem.value).__name__}).",
        hint=f"Set {problem.key_path} to {problem.accepted}, "
        f"or remove it to use the default {default}.",
        id=_ERROR_IDS[problem.kind],
    )


def _not_a_dict_error(problem: Problem) -> checks.Error:
    keys = ", ".join(repr(key) for key in accepted_keys(problem.path))
    return checks.Error(
        f"{problem.key_path} must be a dict, got {describe_value(problem.value)} "
        f"({type(problem.value).__name__}).",
        hint=f"Set {problem.key_path} to a dict with some of the keys {keys}, "
        "or remove it to use the defaults.",
        id=_ERROR_IDS["not_a_dict"],
    )


def _unknown_key_error(problem: Problem) -> checks.Error:
    section = format_key_path(problem.path[:-1])
    return checks.Error(
        f"{section} has the unknown key {describe_value(problem.value)}; "
        f"expected {problem.accepted}.",
        hint="Remove the key or correct its name.",
        id=_ERROR_IDS["unknown_key"],
    )


def _pair_error(problem: Problem) -> checks.Error:
    section = format_key_path(problem.path[:-1])
    return checks.Error(
        f"{problem.key_path} is {describe_value(problem.value)} but its partner is None; "
        f"expected {problem.accepted}. Until both are set, no per-IP bucket is used.",
        hint=f'Set both {section}["ip_rate"] (tokens per second) and {section}["ip_burst"], '
        "or leave both None.",
        id=_ERROR_IDS["pair"],
    )


def _cidr_error(problem: Problem) -> checks.Error:
    return checks.Error(
        f"{problem.key_path} contains {describe_value(problem.value)}, which is not a CIDR "
        f"network; expected {problem.accepted}. The entry is ignored, so those proxies "
        "are not trusted.",
        hint="Write each trusted proxy network as a CIDR string, or use an int to count "
        "proxy hops instead.",
        id=_ERROR_IDS["cidr"],
    )


def _production_warnings(report: ConfigReport) -> Iterator[checks.Warning]:
    if report.values[("event_security",)] == "open":
        yield checks.Warning(
            f"{format_key_path(('event_security',))} is 'open' with DEBUG = False, so "
            "clients can call any method of a LiveView subclass, except the names "
            "LiveView itself defines.",
            hint="Use 'strict' in production, or 'warn' while you add @event_handler "
            "to the handlers.",
            id=OPEN_MODE_WARNING_ID,
        )
    if report.values[("max_message_size",)] == 0:
        yield checks.Warning(
            f"{format_key_path(('max_message_size',))} is 0 with DEBUG = False, so "
            "WebSocket frames of any size are accepted.",
            hint="Set a limit in bytes, such as 65536 (the default).",
            id=NO_SIZE_LIMIT_WARNING_ID,
        )


def _allowed_events_error(view_class: type, entry: object) -> checks.Error:
    return checks.Error(
        f"{view_class.__qualname__}.{ALLOWED_EVENTS_ATTR} contains {describe_value(entry)}, "
        "which is not a valid event name, so it can never be called.",
        hint=f"Event names match ^[a-z][a-z0-9_]*$ and have at most {MAX_EVENT_NAME_LENGTH} "
        "characters: rename the method and list the new name, as a tuple of str.",
        obj=view_class,
        id=ALLOWED_EVENTS_ERROR_ID,
    )


def _subclasses(base: type) -> Iterator[type]:
    """Yield every subclass of ``base`` once, depth first."""
    seen: set[type] = set()
    stack: list[type] = list(base.__subclasses__())
    while stack:
        klass = stack.pop()
        if klass in seen:
            continue
        seen.add(klass)
        yield klass
        stack.extend(klass.__subclasses__())


def _in_apps(view_class: type, app_configs: Sequence[AppConfig] | None) -> bool:
    if app_configs is None:
        return True
    return apps.get_containing_app_config(view_class.__module__) in app_configs
