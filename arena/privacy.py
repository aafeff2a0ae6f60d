"""What the arena keeps about a voter's connection: keyed hashes, never raw addresses.

A client address is stored only as ``HMAC-SHA256(VOTER_HASH_KEY, value)``: the same address
(or network prefix, or user agent) always maps to the same hash, so fraud detection can group
votes, but without the key the hash cannot be reversed, and rotating the key unlinks all of them.
The prefix (IPv4 /24, IPv6 /48) groups a household, a campus or a botnet's subnet.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress

from django.conf import settings

IPV4_PREFIX = 24  # one /24 is typically one organisation's or one ISP pool's block
IPV6_PREFIX = 48  # a /48 is the usual allocation to one site


def keyed_hash(value: str) -> str:
    """Keyed HMAC-SHA256 of ``value`` (an address, prefix or user agent): groupable, one-way."""
    key = settings.VOTER_HASH_KEY.encode()
    return hmac.new(key, value.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def network_prefix(address: str) -> str:
    """The network prefix of an IP address as text ("" for anything that is not an address)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def prefix_hash(address: str) -> str:
    """The keyed hash of the address's network prefix ("" when the address is not valid).
    Each request asks it once or twice: the latest few thousand answers are remembered (per
    key, so a rotated key is never answered from the old one)."""
    return _prefix_hash(address, settings.VOTER_HASH_KEY)


@functools.lru_cache(maxsize=4096)
def _prefix_hash(address: str, key: str) -> str:
    prefix = network_prefix(address)
    if not prefix:
        return ""
    return hmac.new(key.encode(), prefix.encode("utf-8", "replace"), hashlib.sha256).hexdigest()
