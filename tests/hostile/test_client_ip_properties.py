"""Property-based and hostile-input tests of the client IP resolver."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from djust_dist.logutil import reset_log_throttle
from djust_dist.transport.client_ip import UNKNOWN_IP, resolve_client_ip

EXAMPLES = settings(max_examples=300, deadline=None)

TRUSTED = ["10.0.0.0/8", "fd00::/8"]
trusted_proxies = st.sampled_from([0, 1, 2, 5, TRUSTED])


def scope(peer: Any, *forwarded: bytes) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value) for value in forwarded]
    return {"type": "websocket", "client": peer, "headers": headers}


def assert_identity(identity: str) -> None:
    """An identity is ``unknown``, one IPv4 address, or one IPv6 /64 network."""
    if identity == UNKNOWN_IP:
        return
    if ":" in identity:
        network = ipaddress.IPv6Network(identity)
        assert network.prefixlen == 64
    else:
        assert str(ipaddress.IPv4Address(identity)) == identity


@EXAMPLES
@given(
    peer=st.none() | st.tuples(st.text(max_size=60), st.integers()) | st.text(max_size=10),
    forwarded=st.lists(st.binary(max_size=120), max_size=3),
    proxies=trusted_proxies,
)
def test_any_scope_gives_identity(peer: Any, forwarded: list[bytes], proxies: Any) -> None:
    assert_identity(resolve_client_ip(scope(peer, *forwarded), proxies))


@EXAMPLES
@given(
    entries=st.lists(st.ip_addresses().map(str) | st.text(max_size=20), min_size=1, max_size=30),
    proxies=trusted_proxies,
)
def test_forwarded_lists_give_identity(entries: list[str], proxies: Any) -> None:
    header = ", ".join(entries).encode("utf-8", "surrogatepass")

    assert_identity(resolve_client_ip(scope(("10.1.2.3", 1), header), proxies))


@EXAMPLES
@given(
    address=st.ip_addresses(v=6),
    port=st.integers(1, 65535),
    zone=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)
def test_ipv6_forms_normalise_alike(address: ipaddress.IPv6Address, port: int, zone: str) -> None:
    forms = [str(address), f"[{address}]:{port}", f"{address}%{zone}", f"[{address}%{zone}]:{port}"]

    identities = {resolve_client_ip(scope((form, 1)), 0) for form in forms}

    assert len(identities) == 1
    assert_identity(identities.pop())


@EXAMPLES
@given(address=st.ip_addresses(v=4), port=st.integers(1, 65535))
def test_mapped_ipv4_normalises_to_ipv4(address: ipaddress.IPv4Address, port: int) -> None:
    forms = [str(address), f"{address}:{port}", f"::ffff:{address}", f"[::ffff:{address}]:{port}"]

    identities = {resolve_client_ip(scope((form, 1)), 0) for form in forms}

    assert identities == {str(address)}


def test_ten_thousand_entries_with_hops() -> None:
    entries = [f"198.51.{i // 256 % 256}.{i % 256}" for i in range(10_000)]
    header = ", ".join(entries).encode()

    assert resolve_client_ip(scope(("10.0.0.1", 1), header), 1) == entries[-1]
    assert resolve_client_ip(scope(("10.0.0.1", 1), header), 3) == entries[-3]


def test_ten_thousand_trusted_entries_bounded() -> None:
    entries = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(10_000)]
    header = ",".join(entries).encode()

    identity = resolve_client_ip(scope(("10.0.0.1", 1), header), TRUSTED)

    # Only the rightmost 64 entries are walked, so the leftmost walked one wins.
    assert identity == entries[-64]


@pytest.mark.parametrize(
    "value",
    [
        b"\x00",
        b"1.2.3.4\r\nX-Injected: 1",
        b"\x1b[31m1.2.3.4",
        b"1.2.3.4\x7f",
        "\u202e1.2.3.4".encode(),
    ],
    ids=["nul", "crlf", "ansi", "del", "bidi"],
)
def test_control_characters_fall_back_and_log_safely(
    value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    reset_log_throttle()
    caplog.set_level(logging.WARNING, logger="djust_dist.transport.client_ip")

    identity = resolve_client_ip(scope(("192.0.2.1", 1), value), 1)

    assert identity == "192.0.2.1"
    [record] = caplog.records
    message = record.getMessage()
    assert message.isprintable()
    assert len(message) < 300
