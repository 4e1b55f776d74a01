"""SSRF guard: Veille fetches public http(s) addresses only, unless told otherwise.

Rules (issue #3, "SSRF guard"):

- Only ``http`` and ``https`` URLs are fetched; ``file:``, ``ftp:``, ``javascript:``, ``data:``…
  are refused before anything happens.
- Unless ``allow_private`` (``VEILLE_ALLOW_PRIVATE_NETWORKS``) is set, an address is refused when
  it is loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata
  service, fe80::/10), multicast, reserved, unspecified, shared (100.64/10), or any IPv6 address
  that embeds an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64, Teredo): in short,
  anything that is not globally routable.
- Two checks, so neither DNS names nor redirects get around it:
  1. ``refuse_unsafe_url``: a fast static check of the URL (scheme, and literal IPs written in
     any notation glibc accepts: ``0x7f000001``, ``2130706433``, ``0177.0.0.1``, ``127.1``);
  2. ``GuardedConnector``: at connect time, every address the name resolved to is checked;
     refused ones are dropped, and if none is left the connection is refused. The connector
     only ever dials addresses that passed, so a DNS answer cannot change under the check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import TCPConnector
from aiohttp.abc import ResolveResult

from bot.errors import VeilleError

ALLOWED_SCHEMES = frozenset({"http", "https"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class AddressRefused(VeilleError):
    """The URL points somewhere Veille must not go; the message says where and why."""


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_forbidden_address(address: IPAddress) -> bool:
    """True for every address that is not a plain, globally routable unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None or address.sixtofour is not None or address.teredo is not None:
            return True
        if address in _NAT64 or address in _NAT64_LOCAL:
            return True
        if address.scope_id:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def literal_address(host: str) -> IPAddress | None:
    """The IP address a host string denotes by itself (any notation), or None for a DNS name."""
    host = host.strip().strip("[]").rstrip(".")
    if not host:
        return None
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    # Legacy IPv4 forms that the C resolver accepts: hex, octal, one or two or three parts.
    if all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refuse_unsafe_url(url: str, allow_private: bool) -> None:
    """Raise ``AddressRefused`` for a URL that must not be fetched (static part of the guard)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        raise AddressRefused(f"{url!r} is not a valid web address") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise AddressRefused(f"only http:// and https:// addresses can be followed ({shown} was given)")
    if not host:
        raise AddressRefused(f"{url!r} has no host name")
    if allow_private:
        return
    address = literal_address(host)
    if address is not None and is_forbidden_address(address):
        raise AddressRefused(_refusal(host, address))
    if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        raise AddressRefused(f"{host} is this machine (loopback), which Veille does not fetch")


def filter_resolved(host: str, results: Sequence[ResolveResult]) -> list[ResolveResult]:
    """The resolved addresses that are allowed; raises ``AddressRefused`` when none is."""
    allowed: list[ResolveResult] = []
    refused: IPAddress | None = None
    for result in results:
        address = literal_address(result["host"])
        if address is None or is_forbidden_address(address):
            refused = refused or address
            continue
        allowed.append(result)
    if not allowed:
        raise AddressRefused(_refusal(host, refused))
    return allowed


def _refusal(host: str, address: IPAddress | None) -> str:
    where = f"{host} ({address})" if address is not None and str(address) != host else host
    return (
        f"{where} is a private, local or reserved network address, which Veille refuses to fetch "
        "(set VEILLE_ALLOW_PRIVATE_NETWORKS to allow it)"
    )


class GuardedConnector(TCPConnector):
    """A TCPConnector that refuses to dial addresses ``is_forbidden_address`` rejects.

    aiohttp resolves every host in ``_resolve_host`` (literal IPs included, which skip the
    resolver), and connects only to what it returns; checking there covers DNS names,
    literal IPs and every hop of a redirect chain.
    """

    def __init__(self, *args: Any, allow_private: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._allow_private = allow_private

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        if self._allow_private:
            return results
        return filter_resolved(host, results)
