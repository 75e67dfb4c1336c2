"""System checks: every id fires on a bad value and stays silent on a good config."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.checks import CheckMessage
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pytest_django import Settings as DjangoSettings

from djust_dist.conf.checks import (
    check_allowed_events,
    check_liveview_config,
    check_redis_url,
)
from djust_dist.conf.settings import clear_settings_cache
from djust_dist.security.decorators import event_handler

GOOD_CONFIGS = [
    pytest.param({}, id="empty"),
    pytest.param(
        {
            "event_security": "strict",
            "max_message_size": 65536,
            "trusted_proxies": 0,
            "rate_limit": {
                "rate": 100,
                "burst": 20,
                "max_warnings": 3,
                "warning_window": 60,
                "max_connections_per_ip": 10,
                "reconnect_cooldown": 5,
                "ip_rate": None,
                "ip_burst": None,
            },
            "redis": {
                "key_prefix": "djust_dist",
                "on_error": "local",
                "timeout": 0.25,
                "lease_ttl": 30,
                "retry_interval": 1,
            },
        },
        id="all-defaults-written-out",
    ),
    pytest.param(
        {
            "event_security": "warn",
            "max_message_size": 1,
            "trusted_proxies": ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"],
            "rate_limit": {
                "rate": 0.01,
                "burst": 1,
                "reconnect_cooldown": 0,
                "ip_rate": 5.5,
                "ip_burst": 50,
            },
            "redis": {"on_error": "closed", "key_prefix": "shop:prod", "timeout": 2},
        },
        id="edge-values",
    ),
    pytest.param({"trusted_proxies": 3, "redis": {"on_error": "open"}}, id="hops"),
    pytest.param({"trusted_proxies": ()}, id="empty-cidr-tuple"),
]

# (LIVEVIEW_CONFIG, the id expected, the key path the message must name)
BAD_CONFIGS = [
    pytest.param([], "E001", "LIVEVIEW_CONFIG", id="config-list"),
    pytest.param(None, "E001", "LIVEVIEW_CONFIG", id="config-none"),
    pytest.param({"rate_limit": 5}, "E001", '["rate_limit"]', id="section-int"),
    pytest.param({"redis": "redis://x"}, "E001", '["redis"]', id="section-str"),
    pytest.param({"bogus": 1}, "E002", "'bogus'", id="unknown-top"),
    pytest.param({"rate_limit": {"brust": 5}}, "E002", "'brust'", id="unknown-rate-limit"),
    pytest.param({"redis": {"prefix": "x"}}, "E002", "'prefix'", id="unknown-redis"),
    pytest.param({"max_message_size": "64k"}, "E003", '["max_message_size"]', id="size-str"),
    pytest.param({"max_message_size": 1.5}, "E003", '["max_message_size"]', id="size-float"),
    pytest.param({"rate_limit": {"burst": True}}, "E003", '["burst"]', id="burst-bool"),
    pytest.param({"rate_limit": {"burst": 2.5}}, "E003", '["burst"]', id="burst-float"),
    pytest.param({"rate_limit": {"rate": "100"}}, "E003", '["rate"]', id="rate-str"),
    pytest.param({"rate_limit": {"rate": False}}, "E003", '["rate"]', id="rate-bool"),
    pytest.param({"rate_limit": {"max_warnings": None}}, "E003", '["max_warnings"]', id="mw-none"),
    pytest.param({"trusted_proxies": "10.0.0.0/8"}, "E003", '["trusted_proxies"]', id="tp-str"),
    pytest.param({"trusted_proxies": True}, "E003", '["trusted_proxies"]', id="tp-bool"),
    pytest.param({"trusted_proxies": [10]}, "E003", '["trusted_proxies"]', id="tp-int-entry"),
    pytest.param({"redis": {"key_prefix": 5}}, "E003", '["key_prefix"]', id="prefix-int"),
    pytest.param({"redis": {"timeout": True}}, "E003", '["timeout"]', id="timeout-bool"),
    pytest.param({"rate_limit": {"burst": 0}}, "E004", '["burst"]', id="burst-zero"),
    pytest.param({"rate_limit": {"rate": 0}}, "E004", '["rate"]', id="rate-zero"),
    pytest.param({"rate_limit": {"rate": math.nan}}, "E004", '["rate"]', id="rate-nan"),
    pytest.param({"rate_limit": {"rate": math.inf}}, "E004", '["rate"]', id="rate-inf"),
    pytest.param({"rate_limit": {"rate": 0.001}}, "E004", '["rate"]', id="rate-below-min"),
    pytest.param({"rate_limit": {"rate": 1e6}}, "E004", '["rate"]', id="rate-above-max"),
    pytest.param({"max_message_size": -1}, "E004", '["max_message_size"]', id="size-negative"),
    pytest.param({"rate_limit": {"max_warnings": 0}}, "E004", '["max_warnings"]', id="mw-zero"),
    pytest.param({"rate_limit": {"warning_window": 0}}, "E004", '["warning_window"]', id="ww-0"),
    pytest.param(
        {"rate_limit": {"max_connections_per_ip": 0}},
        "E004",
        '["max_connections_per_ip"]',
        id="connections-zero",
    ),
    pytest.param(
        {"rate_limit": {"reconnect_cooldown": -1}},
        "E004",
        '["reconnect_cooldown"]',
        id="cooldown-negative",
    ),
    pytest.param(
        {"rate_limit": {"ip_rate": 0, "ip_burst": 5}}, "E004", '["ip_rate"]', id="ip-rate-zero"
    ),
    pytest.param(
        {"rate_limit": {"ip_rate": 1, "ip_burst": 0}}, "E004", '["ip_burst"]', id="ip-burst-zero"
    ),
    pytest.param({"redis": {"timeout": 0}}, "E004", '["timeout"]', id="timeout-zero"),
    pytest.param({"redis": {"lease_ttl": -5}}, "E004", '["lease_ttl"]', id="lease-negative"),
    pytest.param({"redis": {"retry_interval": 0}}, "E004", '["retry_interval"]', id="retry-0"),
    pytest.param({"redis": {"key_prefix": ""}}, "E004", '["key_prefix"]', id="prefix-empty"),
    pytest.param({"redis": {"key_prefix": "a{b}"}}, "E004", '["key_prefix"]', id="prefix-brace"),
    pytest.param({"trusted_proxies": -1}, "E004", '["trusted_proxies"]', id="tp-negative"),
    pytest.param({"event_security": "paranoid"}, "E005", '["event_security"]', id="mode-unknown"),
    pytest.param({"event_security": "STRICT"}, "E005", '["event_security"]', id="mode-upper"),
    pytest.param({"event_security": None}, "E005", '["event_security"]', id="mode-none"),
    pytest.param({"redis": {"on_error": "fail"}}, "E005", '["on_error"]', id="on-error-unknown"),
    pytest.param({"rate_limit": {"ip_rate": 5}}, "E006", '["ip_rate"]', id="ip-rate-alone"),
    pytest.param({"rate_limit": {"ip_burst": 5}}, "E006", '["ip_burst"]', id="ip-burst-alone"),
    pytest.param({"trusted_proxies": ["10.0.0.0/33"]}, "E007", "10.0.0.0/33", id="cidr-prefix"),
    pytest.param({"trusted_proxies": ["proxy.local"]}, "E007", "proxy.local", id="cidr-name"),
]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    clear_settings_cache()
    yield
    clear_settings_cache()


def ids_of(messages: list[CheckMessage]) -> list[str]:
    return [str(message.id) for message in messages]


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("config", GOOD_CONFIGS)
def test_good_config_silent(settings: DjangoSettings, config: Any, debug: bool) -> None:
    settings.LIVEVIEW_CONFIG = config
    settings.DEBUG = debug

    assert check_liveview_config() == []


@pytest.mark.parametrize(("config", "check_id", "key"), BAD_CONFIGS)
def test_bad_config_fires(settings: DjangoSettings, config: Any, check_id: str, key: str) -> None:
    settings.LIVEVIEW_CONFIG = config

    messages = check_liveview_config()

    assert ids_of(messages) == [f"djust_dist.{check_id}"]
    assert key in messages[0].msg
    assert messages[0].hint
    assert messages[0].is_serious()


def test_type_error_names_value(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"burst": True}}

    [message] = check_liveview_config()

    assert 'LIVEVIEW_CONFIG["rate_limit"]["burst"]' in message.msg
    assert "got True (bool)" in message.msg
    assert "an int of at least 1" in message.msg
    assert "default 20" in str(message.hint)


def test_range_error_names_bounds(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"rate": 0}}

    [message] = check_liveview_config()

    assert "got 0 (int)" in message.msg
    assert "from 0.01 to 100000" in message.msg


def test_mode_error_lists_modes(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"event_security": "paranoid"}

    [message] = check_liveview_config()

    assert "'paranoid'" in message.msg
    assert "'strict', 'warn', 'open'" in message.msg


def test_unknown_key_lists_keys(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"brust": 5}}

    [message] = check_liveview_config()

    assert 'LIVEVIEW_CONFIG["rate_limit"]' in message.msg
    assert "'brust'" in message.msg
    assert "'max_connections_per_ip'" in message.msg
    assert "did you mean 'burst'?" in message.msg


def test_long_value_truncated(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"event_security": "x" * 500}

    [message] = check_liveview_config()

    assert "more chars]" in message.msg
    assert len(message.msg) < 300


def test_several_problems_reported(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {
        "event_security": "nope",
        "rate_limit": {"burst": 0, "rate": "x"},
        "trusted_proxies": ["bad", "10.0.0.0/8", "worse"],
    }

    assert sorted(ids_of(check_liveview_config())) == [
        "djust_dist.E003",
        "djust_dist.E004",
        "djust_dist.E005",
        "djust_dist.E007",
        "djust_dist.E007",
    ]


@pytest.mark.parametrize(
    ("config", "check_id"),
    [
        ({"event_security": "open"}, "djust_dist.W001"),
        ({"max_message_size": 0}, "djust_dist.W002"),
    ],
)
def test_production_warnings(settings: DjangoSettings, config: Any, check_id: str) -> None:
    settings.LIVEVIEW_CONFIG = config

    settings.DEBUG = True
    assert check_liveview_config() == []

    settings.DEBUG = False
    messages = check_liveview_config()
    assert ids_of(messages) == [check_id]
    assert not messages[0].is_serious()
    assert messages[0].hint


@pytest.mark.parametrize(
    "url",
    [
        "redis://redis:6379/0",
        "redis://127.0.0.1",
        "rediss://user:secret@cache.example.com:6380/2",
        "redis://[::1]:6379/0",
        "unix:///run/redis/redis.sock?db=1",
        "redis+sentinel://s1:26379,s2:26379/mymaster/0",
        "redis+cluster://n1:7000,n2:7001",
    ],
)
def test_redis_url_good(settings: DjangoSettings, url: str) -> None:
    settings.REDIS_URL = url

    assert check_redis_url() == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:6379", "scheme 'http'"),
        ("redis://h:99999/0", "host[:port]"),
        ("redis://h:port/0", "host[:port]"),
        ("redis:///0", "no host"),
        ("redis://h/zero", "'zero' is not a number"),
        ("redis://h1,h2/0", "several hosts"),
        ("unix://", "socket path"),
        ("redis+cluster://n1:7000/3", "only database 0"),
        (6379, "expected a str"),
    ],
)
def test_redis_url_bad(settings: DjangoSettings, url: object, reason: str) -> None:
    settings.REDIS_URL = url

    [message] = check_redis_url()

    assert message.id == "djust_dist.E008"
    assert reason in message.msg
    assert "redis, rediss, unix" in message.msg
    assert message.hint


def test_redis_url_password_hidden(settings: DjangoSettings) -> None:
    settings.REDIS_URL = "redis://admin:hunter2@h:99999/0"

    [message] = check_redis_url()

    assert "hunter2" not in message.msg
    assert "admin:***@" in message.msg


@pytest.mark.parametrize("url", [None, ""])
def test_no_redis_warns(settings: DjangoSettings, url: str | None) -> None:
    settings.REDIS_URL = url

    messages = check_redis_url()

    assert ids_of(messages) == ["djust_dist.W003"]
    assert "each process's memory" in messages[0].msg


def test_redis_url_from_env_checked(
    settings: DjangoSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    del settings.REDIS_URL

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert check_redis_url() == []

    monkeypatch.setenv("REDIS_URL", "ftp://127.0.0.1")
    assert ids_of(check_redis_url()) == ["djust_dist.E008"]


class Base:
    """Stands in for LiveView in the _allowed_events checks."""

    def mount(self) -> None: ...


class GoodView(Base):
    _allowed_events = ("increment", "reset")


class BadView(Base):
    _allowed_events = ["increment", "_secret", "Reset", "do-it", "ok\n", 7]


class InheritsBadView(BadView):
    """Does not define _allowed_events itself, so it is not reported again."""

    @event_handler
    def increment(self) -> None: ...


def test_allowed_events_check_fires() -> None:
    messages = check_allowed_events(base=Base)

    assert ids_of(messages) == ["djust_dist.E009"] * 5
    assert all(message.obj is BadView for message in messages)
    texts = " ".join(message.msg for message in messages)
    for fragment in ("'_secret'", "'Reset'", "'do-it'", "'ok\\\\n'", " 7,"):
        assert fragment in texts
    assert "^[a-z][a-z0-9_]*$" in str(messages[0].hint)


def test_allowed_events_check_silent() -> None:
    class OnlyGood(Base):
        _allowed_events = ("increment",)

    class Fresh:
        pass

    assert check_allowed_events(base=Fresh) == []
    assert check_allowed_events(base=OnlyGood) == []


def test_allowed_events_check_app_filter() -> None:
    from django.apps import apps

    assert check_allowed_events([apps.get_app_config("auth")], base=Base) == []


def test_checks_registered() -> None:
    registered = registry.get_checks()

    assert check_liveview_config in registered
    assert check_redis_url in registered
    assert check_allowed_events in registered


def test_manage_check_output(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"burst": 0}, "event_security": "paranoid"}

    with pytest.raises(SystemCheckError) as info:
        call_command("check")

    output = str(info.value)
    assert "djust_dist.E004" in output
    assert 'LIVEVIEW_CONFIG["rate_limit"]["burst"] must be an int of at least 1, got 0' in output
    assert "djust_dist.E005" in output
    assert "'paranoid'" in output
    assert "one of 'strict', 'warn', 'open'" in output
    assert "HINT:" in output
