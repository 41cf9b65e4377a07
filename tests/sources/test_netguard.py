"""Which addresses count as public: a redirect or a DNS answer may only lead to those."""

from __future__ import annotations

import ipaddress

import pytest

from tradewatch.sources._netguard import is_public


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "192.0.0.8",  # IETF protocol assignments (Python 3.11's tables call it global)
        "::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 to 127.0.0.1
        "fec0::1",  # deprecated site-local
        "fe80::1",
        "fc00::1",
    ],
)
def test_private_addresses_in_any_form_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700::1111", "2002:808:808::", "64:ff9b::808:808"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
