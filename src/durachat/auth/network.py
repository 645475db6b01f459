"""Who the client really is behind proxies: its address and whether it used HTTPS.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the direct peer
is one of `DURACHAT_TRUSTED_PROXIES`; from anyone else they are ignored, so a
client cannot forge its address (and dodge the login rate limit) with a header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Proxies:
    """The trusted proxies, parsed once."""

    def __init__(self, proxies: Iterable[str], public_url: str) -> None:
        self._networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in proxies
        )
        self._public_https = public_url.lower().startswith("https://")

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """The client's address: the peer's, or from a trusted proxy's X-Forwarded-For
        the right-most address that is not itself a trusted proxy."""
        if not self.trusted(peer):
            return peer
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer

    def is_https(self, peer: str, scheme: str, headers: Mapping[str, str]) -> bool:
        """Whether the client reached us over HTTPS (for the cookie's Secure flag)."""
        if self._public_https or scheme in ("https", "wss"):
            return True
        forwarded = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        return self.trusted(peer) and forwarded == "https"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
