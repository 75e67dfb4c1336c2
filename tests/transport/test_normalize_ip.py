"""normalize_ip: operator input turned into the identity that per-IP limits use."""

from __future__ import annotations

import pytest

from djust_dist.transport.client_ip import UNKNOWN_IP, normalize_ip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.5", "203.0.113.5"),
        (" 203.0.113.5:443 ", "203.0.113.5"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("[2001:db8:1:2::5]:80", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("2001:db8:1:2::/64", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::9/128", "2001:db8:1:2::/64"),
        ("203.0.113.5/32", "203.0.113.5"),
        ("unknown", UNKNOWN_IP),
    ],
)
def test_normalize_ip_forms(text: str, expected: str) -> None:
    assert normalize_ip(text) == expected


@pytest.mark.parametrize("text", ["", "not-an-ip", "10.0.0.0/8", "2001:db8::/48", "1.2.3.4/x"])
def test_normalize_ip_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"not an IP|several client identities"):
        normalize_ip(text)
