"""Client IP resolution from the ASGI scope."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from djust_dist.logutil import reset_log_throttle
from djust_dist.transport import client_ip
from djust_dist.transport.client_ip import UNKNOWN_IP, resolve_client_ip

PROXIES = ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]


@pytest.fixture(autouse=True)
def fresh_log_throttle() -> Iterator[None]:
    reset_log_throttle()
    yield
    reset_log_throttle()


def make_scope(peer: Any = ("203.0.113.9", 50000), *forwarded_for: str | bytes) -> dict[str, Any]:
    headers = [(b"host", b"example.com")]
    for value in forwarded_for:
        headers.append((b"x-forwarded-for", value if isinstance(value, bytes) else value.encode()))
    return {"type": "websocket", "client": peer, "headers": headers}


def test_peer_without_proxies() -> None:
    assert resolve_client_ip(make_scope(("198.51.100.7", 1234)), 0) == "198.51.100.7"


def test_xff_ignored_without_proxies() -> None:
    scope = make_scope(("198.51.100.7", 1234), "1.2.3.4")

    assert resolve_client_ip(scope, 0) == "198.51.100.7"


def test_one_hop_rightmost() -> None:
    scope = make_scope(("10.0.0.2", 1), "1.1.1.1, 198.51.100.20")

    assert resolve_client_ip(scope, 1) == "198.51.100.20"


def test_two_hops() -> None:
    scope = make_scope(("10.0.0.2", 1), "6.6.6.6, 198.51.100.20, 10.0.0.1")

    assert resolve_client_ip(scope, 2) == "198.51.100.20"


def test_spoofed_leftmost_ignored() -> None:
    # The client wrote "1.2.3.4" itself; the proxy appended the real address.
    scope = make_scope(("10.0.0.2", 1), "1.2.3.4, 6.6.6.6, 198.51.100.20")

    assert resolve_client_ip(scope, 1) == "198.51.100.20"


def test_hops_exact_chain_length() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20, 10.0.0.1")

    assert resolve_client_ip(scope, 2) == "198.51.100.20"


def test_chain_shorter_than_hops() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20")

    assert resolve_client_ip(scope, 2) == "10.0.0.2"


def test_hops_without_xff() -> None:
    assert resolve_client_ip(make_scope(("10.0.0.2", 1)), 1) == "10.0.0.2"


def test_empty_xff_uses_peer() -> None:
    assert resolve_client_ip(make_scope(("10.0.0.2", 1), "  "), 1) == "10.0.0.2"


def test_multiple_xff_headers_concatenate() -> None:
    scope = make_scope(("10.0.0.2", 1), "1.1.1.1, 2.2.2.2", "198.51.100.20")

    assert resolve_client_ip(scope, 1) == "198.51.100.20"
    assert resolve_client_ip(scope, 2) == "2.2.2.2"
    assert resolve_client_ip(scope, 3) == "1.1.1.1"


def test_header_name_case_insensitive() -> None:
    scope = {"client": ("10.0.0.2", 1), "headers": [(b"X-Forwarded-For", b"198.51.100.20")]}

    assert resolve_client_ip(scope, 1) == "198.51.100.20"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(" 198.51.100.20 ", "198.51.100.20", id="whitespace"),
        pytest.param("198.51.100.20:8443", "198.51.100.20", id="v4-port"),
        pytest.param("[2001:db8:1:2::5]:443", "2001:db8:1:2::/64", id="v6-bracket-port"),
        pytest.param("[2001:db8:1:2::5]", "2001:db8:1:2::/64", id="v6-bracket"),
        pytest.param("2001:db8:1:2:aaaa::5", "2001:db8:1:2::/64", id="v6-grouped"),
        pytest.param("fe80::1%eth0", "fe80::/64", id="zone-id"),
        pytest.param("[fe80::1%25eth0]:80", "fe80::/64", id="zone-id-bracket"),
        pytest.param("::ffff:198.51.100.20", "198.51.100.20", id="mapped-v4"),
        pytest.param("[::ffff:198.51.100.20]:80", "198.51.100.20", id="mapped-v4-port"),
    ],
)
def test_entry_normalised(entry: str, expected: str) -> None:
    assert resolve_client_ip(make_scope(("10.0.0.2", 1), entry), 1) == expected


def test_v6_neighbours_share_identity() -> None:
    first = resolve_client_ip(make_scope(("2001:db8:1:2::1", 1)), 0)
    second = resolve_client_ip(make_scope(("2001:db8:1:2:ffff::9", 1)), 0)
    other = resolve_client_ip(make_scope(("2001:db8:1:3::1", 1)), 0)

    assert first == second == "2001:db8:1:2::/64"
    assert other == "2001:db8:1:3::/64"


def test_mapped_peer_is_v4() -> None:
    assert resolve_client_ip(make_scope(("::ffff:198.51.100.7", 1)), 0) == "198.51.100.7"


@pytest.mark.parametrize("peer", [None, ("/run/app.sock", 0), ("", 0), [], ("testclient", 0), "x"])
def test_no_resolvable_peer_unknown(peer: Any) -> None:
    assert resolve_client_ip(make_scope(peer), 0) == UNKNOWN_IP


def test_missing_client_key_unknown() -> None:
    assert resolve_client_ip({"type": "websocket", "headers": []}, 0) == UNKNOWN_IP


def test_unix_socket_with_hops_uses_xff() -> None:
    scope = make_scope(None, "198.51.100.20")

    assert resolve_client_ip(scope, 1) == "198.51.100.20"


def test_invalid_entry_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    scope = make_scope(("10.0.0.2", 1), "1.1.1.1, not-an-ip\n<script>")

    with caplog.at_level(logging.WARNING, logger="djust_dist"):
        first = resolve_client_ip(scope, 1)
        second = resolve_client_ip(scope, 1)

    assert first == second == "10.0.0.2"
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "\n" not in message
    assert "not-an-ip\\n<script>" in message
    assert "10.0.0.2" in message


@pytest.mark.parametrize("entry", ["unknown", "", "1.2.3", "01.2.3.4", "1.2.3.4:80:90", "x" * 500])
def test_invalid_entries_rejected(entry: str) -> None:
    scope = make_scope(("10.0.0.2", 1), f"1.1.1.1,{entry}")

    assert resolve_client_ip(scope, 1) == "10.0.0.2"


def test_cidr_untrusted_peer_ignores_xff() -> None:
    scope = make_scope(("198.51.100.7", 1), "1.2.3.4")

    assert resolve_client_ip(scope, PROXIES) == "198.51.100.7"


def test_cidr_walks_past_trusted() -> None:
    scope = make_scope(("10.0.0.2", 1), "1.2.3.4, 198.51.100.20, 192.168.1.1, 10.1.1.1")

    assert resolve_client_ip(scope, PROXIES) == "198.51.100.20"


def test_cidr_spoofed_trusted_left_ignored() -> None:
    scope = make_scope(("10.0.0.2", 1), "10.9.9.9, 198.51.100.20")

    assert resolve_client_ip(scope, PROXIES) == "198.51.100.20"


def test_cidr_all_trusted_leftmost() -> None:
    scope = make_scope(("10.0.0.2", 1), "192.168.5.5, 10.1.1.1")

    assert resolve_client_ip(scope, PROXIES) == "192.168.5.5"


def test_cidr_no_xff_uses_peer() -> None:
    assert resolve_client_ip(make_scope(("10.0.0.2", 1)), PROXIES) == "10.0.0.2"


def test_cidr_v6_proxy() -> None:
    scope = make_scope(("fd00::2", 1), "2001:db8:1:2::5, fd00::1")

    assert resolve_client_ip(scope, PROXIES) == "2001:db8:1:2::/64"


def test_cidr_mapped_peer_trusted() -> None:
    scope = make_scope(("::ffff:10.0.0.2", 1), "198.51.100.20")

    assert resolve_client_ip(scope, PROXIES) == "198.51.100.20"


def test_cidr_invalid_entry_falls_back() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20, garbage, 10.1.1.1")

    assert resolve_client_ip(scope, PROXIES) == "10.0.0.2"


def test_cidr_invalid_network_ignored() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20")

    assert resolve_client_ip(scope, ["not-a-cidr", "10.0.0.0/8"]) == "198.51.100.20"
    assert resolve_client_ip(scope, ["not-a-cidr"]) == "10.0.0.2"


def test_cidr_empty_list_uses_peer() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20")

    assert resolve_client_ip(scope, []) == "10.0.0.2"


def test_cidr_tuple_accepted() -> None:
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20")

    assert resolve_client_ip(scope, tuple(PROXIES)) == "198.51.100.20"


def count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Record every address that resolve_client_ip parses."""
    parsed: list[str | None] = []
    original = client_ip._parse_entry

    def counting(entry: str | None) -> Any:
        parsed.append(entry)
        return original(entry)

    monkeypatch.setattr(client_ip, "_parse_entry", counting)
    return parsed


def test_huge_xff_hops_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    spoofed = ", ".join(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(10_000))
    scope = make_scope(("10.0.0.2", 1), spoofed + ", 198.51.100.20")
    parsed = count_parses(monkeypatch)

    assert resolve_client_ip(scope, 1) == "198.51.100.20"
    assert len(parsed) == 2  # the peer and one entry


def test_huge_xff_cidr_all_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    trusted = ", ".join(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(10_000))
    scope = make_scope(("10.0.0.2", 1), "198.51.100.20, " + trusted)
    parsed = count_parses(monkeypatch)

    client = resolve_client_ip(scope, PROXIES)

    # The walk stops after a bounded number of entries and returns a trusted
    # address, never the client's own pick at the far left.
    assert client == "10.0.38.208"  # entry 9936, the 64th from the right
    assert len(parsed) == client_ip.MAX_FORWARDED_WALK + 1


def test_huge_xff_cidr_untrusted_near_right() -> None:
    junk = ", ".join(["garbage"] * 10_000)
    scope = make_scope(("10.0.0.2", 1), junk + ", 198.51.100.20, 10.1.1.1")

    assert resolve_client_ip(scope, PROXIES) == "198.51.100.20"


def test_latin1_header_bytes() -> None:
    scope = make_scope(("10.0.0.2", 1), b"\xff\xfe, 198.51.100.20")

    assert resolve_client_ip(scope, 1) == "198.51.100.20"
    assert resolve_client_ip(scope, 2) == "10.0.0.2"


@pytest.mark.parametrize("bad", [True, False])
def test_bool_hops_rejected(bad: bool) -> None:
    with pytest.raises(TypeError):
        resolve_client_ip(make_scope(), bad)


def test_negative_hops_rejected() -> None:
    with pytest.raises(ValueError, match="-1"):
        resolve_client_ip(make_scope(), -1)


def test_single_cidr_string_rejected() -> None:
    with pytest.raises(TypeError, match=re.escape("10.0.0.0/8")):
        resolve_client_ip(make_scope(), "10.0.0.0/8")
