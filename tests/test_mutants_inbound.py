"""integrations/inbound.py's rules pinned for `make mutate`: which address delivered a callback, behind trusted
proxies or not (the IP allow-lists rely on it; anyone can write X-Forwarded-For)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from integrations.inbound import client_address, in_networks

PROXIES = ["10.0.0.0/8", "127.0.0.1"]


def delivered_by(remote: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_address(RequestFactory().post("/", REMOTE_ADDR=remote, **headers))


@pytest.mark.parametrize(
    ("remote", "forwarded", "address"),
    [
        ("127.0.0.1", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # the last hop before our proxies
        ("127.0.0.1", " 198.51.100.1 ,203.0.113.9 ,, 10.1.2.3 ", "203.0.113.9"),  # a client can prepend anything
        ("10.9.9.9", "10.0.0.1, 10.0.0.2", "10.9.9.9"),  # only proxies: the nearest one
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", None, "127.0.0.1"),
        ("203.0.113.5", "35.155.139.143", "203.0.113.5"),  # not behind a proxy: the header is not read
        ("127.0.0.1", "not-an-address", "not-an-address"),  # kept as given: no allow-list matches it
    ],
)
def test_the_delivering_address_is_the_last_one_before_the_trusted_proxies(settings, remote, forwarded, address):
    settings.TRUSTED_PROXIES = PROXIES
    assert delivered_by(remote, forwarded) == address


def test_networks_may_name_a_host_inside_them_and_anything_unreadable_is_outside():
    assert in_networks("10.200.1.1", ["10.1.2.3/8"])  # host bits set: still the /8
    assert not in_networks("11.0.0.1", ["10.0.0.0/8"])
    assert not in_networks("::1", ["127.0.0.0/8"]) and not in_networks("", PROXIES)
    assert in_networks("2001:db8::7", ["10.0.0.0/8", "2001:db8::/32"]) and not in_networks("10.0.0.1", [])
