"""Keyed hashes of a voter's connection: one per network, never the address, per key."""

from __future__ import annotations

from typing import Any

from arena.privacy import keyed_hash, network_prefix, prefix_hash


def test_addresses_of_one_network_share_its_keyed_hash() -> None:
    assert (
        prefix_hash("203.0.113.7") == prefix_hash("203.0.113.200") == keyed_hash("203.0.113.0/24")
    )
    assert prefix_hash("203.0.114.7") != prefix_hash("203.0.113.7")
    assert prefix_hash("2001:db8:1:2::9") == keyed_hash(network_prefix("2001:db8:1:ffff::1"))
    assert prefix_hash("not an address") == "" and "203.0.113" not in prefix_hash("203.0.113.7")


def test_a_rotated_key_is_never_answered_from_the_old_one(settings: Any) -> None:
    before = prefix_hash("198.51.100.4")
    settings.VOTER_HASH_KEY = "a-rotated-key-" + "k" * 32

    after = prefix_hash("198.51.100.4")
    assert after != before and after == keyed_hash("198.51.100.0/24")
