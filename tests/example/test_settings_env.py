"""The example settings turn DJUST_* environment variables into LIVEVIEW_CONFIG."""

from __future__ import annotations

import pytest
from exampleproject.settings import build_liveview_config, env_list


def test_unset_variables_leave_config_empty() -> None:
    assert build_liveview_config({}) == {}


def test_overrides_nest_under_sections() -> None:
    config = build_liveview_config(
        {
            "DJUST_TRUSTED_PROXIES": "1",
            "DJUST_LEASE_TTL": "10",
            "DJUST_RECONNECT_COOLDOWN": "2.5",
            "DJUST_MAX_CONNECTIONS_PER_IP": "4",
        }
    )
    assert config == {
        "trusted_proxies": 1,
        "redis": {"lease_ttl": 10.0},
        "rate_limit": {"reconnect_cooldown": 2.5, "max_connections_per_ip": 4},
    }


def test_trusted_proxies_accepts_cidrs() -> None:
    config = build_liveview_config({"DJUST_TRUSTED_PROXIES": "10.0.0.0/8, 172.16.0.0/12"})
    assert config["trusted_proxies"] == ["10.0.0.0/8", "172.16.0.0/12"]


def test_blank_variable_is_ignored() -> None:
    assert build_liveview_config({"DJUST_LEASE_TTL": "  "}) == {}


def test_invalid_number_names_variable() -> None:
    with pytest.raises(ValueError, match="DJUST_MAX_CONNECTIONS_PER_IP"):
        build_liveview_config({"DJUST_MAX_CONNECTIONS_PER_IP": "many"})


def test_allowed_hosts_split_on_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "example.com, ,localhost")
    assert env_list("DJANGO_ALLOWED_HOSTS", []) == ["example.com", "localhost"]
