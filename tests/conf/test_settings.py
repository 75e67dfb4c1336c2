"""get_settings(): defaults, per-key merge, REDIS_URL resolution and reloads."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.test import override_settings
from pytest_django import Settings as DjangoSettings

from djust_dist.conf.settings import (
    DEFAULTS,
    DjustSettings,
    RateLimitSettings,
    RedisSettings,
    clear_settings_cache,
    get_settings,
)


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    clear_settings_cache()
    yield
    clear_settings_cache()


def test_defaults_when_empty(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {}

    assert get_settings() == DjustSettings(
        event_security="strict",
        max_message_size=65536,
        trusted_proxies=0,
        rate_limit=RateLimitSettings(
            rate=100.0,
            burst=20,
            max_warnings=3,
            warning_window=60.0,
            max_connections_per_ip=10,
            reconnect_cooldown=5.0,
            ip_rate=None,
            ip_burst=None,
        ),
        redis=RedisSettings(
            key_prefix="djust_dist",
            on_error="local",
            timeout=0.25,
            lease_ttl=30.0,
            retry_interval=1.0,
        ),
        redis_url=None,
    )


def test_defaults_when_setting_missing(settings: DjangoSettings) -> None:
    del settings.LIVEVIEW_CONFIG

    assert get_settings().rate_limit.burst == 20


def test_nested_merge_per_key(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {
        "event_security": "warn",
        "rate_limit": {"burst": 50, "ip_rate": 2, "ip_burst": 4},
        "redis": {"timeout": 1},
    }

    current = get_settings()

    assert current.event_security == "warn"
    assert current.rate_limit.burst == 50
    assert current.rate_limit.rate == 100.0
    assert current.rate_limit.max_warnings == 3
    assert current.rate_limit.ip_rate == 2.0
    assert current.rate_limit.ip_burst == 4
    assert current.redis.timeout == 1.0
    assert current.redis.key_prefix == "djust_dist"


def test_numbers_become_float(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"rate": 7, "reconnect_cooldown": 2}}

    current = get_settings()

    assert isinstance(current.rate_limit.rate, float)
    assert isinstance(current.rate_limit.reconnect_cooldown, float)


def test_override_settings_at_once() -> None:
    before = get_settings()

    with override_settings(LIVEVIEW_CONFIG={"rate_limit": {"burst": 3}}):
        assert get_settings().rate_limit.burst == 3
        with override_settings(REDIS_URL="redis://127.0.0.1:6379/15"):
            assert get_settings().redis_url == "redis://127.0.0.1:6379/15"
        assert get_settings().redis_url is None

    assert get_settings() == before


def test_cached_between_calls() -> None:
    assert get_settings() is get_settings()


def test_trusted_proxies_list_becomes_tuple(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"trusted_proxies": ["10.0.0.0/8", "fd00::/8"]}

    assert get_settings().trusted_proxies == ("10.0.0.0/8", "fd00::/8")


def test_trusted_proxies_keeps_valid_cidrs(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"trusted_proxies": ["10.0.0.0/8", "10.0.0.0/33"]}

    assert get_settings().trusted_proxies == ("10.0.0.0/8",)


def test_trusted_proxies_hops(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"trusted_proxies": 2}

    assert get_settings().trusted_proxies == 2


@pytest.mark.parametrize("mode", ["paranoid", "", "STRICT", None, 3])
def test_invalid_event_security_strict(settings: DjangoSettings, mode: object) -> None:
    settings.LIVEVIEW_CONFIG = {"event_security": mode}

    assert get_settings().event_security == "strict"


@pytest.mark.parametrize(
    ("section", "key", "bad"),
    [
        ("rate_limit", "burst", 0),
        ("rate_limit", "burst", True),
        ("rate_limit", "burst", 2.5),
        ("rate_limit", "rate", "100"),
        ("rate_limit", "rate", float("nan")),
        ("rate_limit", "max_warnings", 0),
        ("rate_limit", "warning_window", 0),
        ("rate_limit", "reconnect_cooldown", -1),
        ("redis", "timeout", 0),
        ("redis", "on_error", "explode"),
        ("redis", "key_prefix", ""),
    ],
)
def test_invalid_value_uses_default(
    settings: DjangoSettings, section: str, key: str, bad: object
) -> None:
    settings.LIVEVIEW_CONFIG = {section: {key: bad}}

    assert getattr(getattr(get_settings(), section), key) == DEFAULTS[section][key]


def test_invalid_value_logged(settings: DjangoSettings, caplog: pytest.LogCaptureFixture) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"burst": 0}, "typo": 1}

    with caplog.at_level(logging.WARNING, logger="djust_dist"):
        get_settings()

    message = caplog.records[-1].getMessage()
    assert 'LIVEVIEW_CONFIG["rate_limit"]["burst"]' in message
    assert 'LIVEVIEW_CONFIG["typo"]' in message
    assert "manage.py check" in message


def test_ip_bucket_needs_both(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": {"ip_rate": 5}}

    current = get_settings()

    assert current.rate_limit.ip_rate is None
    assert current.rate_limit.ip_burst is None


@pytest.mark.parametrize("config", [[], "strict", None, 5])
def test_config_not_dict_defaults(settings: DjangoSettings, config: object) -> None:
    settings.LIVEVIEW_CONFIG = config

    assert get_settings().rate_limit.burst == 20


def test_section_not_dict_defaults(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {"rate_limit": 5, "redis": {"timeout": 2}}

    current = get_settings()

    assert current.rate_limit.burst == 20
    assert current.redis.timeout == 2.0


def test_redis_url_from_setting(settings: DjangoSettings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:6379/3"

    assert get_settings().redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize("value", [None, ""])
def test_redis_url_setting_blank_wins(
    settings: DjangoSettings, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/4")
    settings.REDIS_URL = value

    assert get_settings().redis_url is None


def test_redis_url_env_fallback(settings: DjangoSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    del settings.REDIS_URL

    assert get_settings().redis_url == "redis://127.0.0.1:6379/5"


def test_redis_url_absent_everywhere(settings: DjangoSettings) -> None:
    del settings.REDIS_URL

    assert get_settings().redis_url is None


@pytest.mark.parametrize("url", ["http://127.0.0.1", "redis://h:99999/0", 6379])
def test_invalid_redis_url_memory(
    settings: DjangoSettings, caplog: pytest.LogCaptureFixture, url: object
) -> None:
    settings.REDIS_URL = url

    with caplog.at_level(logging.ERROR, logger="djust_dist"):
        assert get_settings().redis_url is None

    assert "REDIS_URL" in caplog.records[-1].getMessage()


def test_invalid_redis_url_password_hidden(
    settings: DjangoSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REDIS_URL = "redis://user:hunter2@h:99999/0"

    with caplog.at_level(logging.ERROR, logger="djust_dist"):
        get_settings()

    message = caplog.records[-1].getMessage()
    assert "hunter2" not in message
    assert "user:***@" in message


def test_redis_backend_options(settings: DjangoSettings) -> None:
    settings.LIVEVIEW_CONFIG = {
        "rate_limit": {"reconnect_cooldown": 7},
        "redis": {"key_prefix": "app1", "on_error": "closed"},
    }

    current = get_settings()

    assert current.redis.backend_options() == {
        "key_prefix": "app1",
        "on_error": "closed",
        "timeout": 0.25,
        "lease_ttl": 30.0,
        "retry_interval": 1.0,
    }
    assert current.backend_options() == {
        **current.redis.backend_options(),
        "limit_retry_hint": 7.0,
    }


def test_defaults_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULTS["event_security"] = "open"  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULTS["rate_limit"]["burst"] = 1


def test_settings_frozen() -> None:
    current = get_settings()

    with pytest.raises(AttributeError):
        current.event_security = "open"  # type: ignore[misc]
