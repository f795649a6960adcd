"""Outbound address check (SPEC §2): providers may not point us at internal addresses.

A host that resolves to a loopback, private, link-local, carrier-grade NAT, reserved, multicast
or cloud-metadata address (or an IPv6 address carrying one) is refused unless
SIS_SYNC_ALLOW_PRIVATE_HOSTS is on (development and tests).
"""

from __future__ import annotations

import ipaddress
import socket

from django.conf import settings

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: IPv4 behind a NAT64
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressNotAllowed(ValueError):
    pass


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address reaches: mapped (::ffff:a.b.c.d), IPv4-compatible
    (::a.b.c.d), 6to4 (2002::/16), Teredo (2001::/32) and NAT64 (64:ff9b::/96)."""
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        found.extend(address.teredo)
    if address in NAT64 or (int(address) >> 32 == 0 and int(address) > 0xFFFF):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def blocked(address: Address) -> bool:
    """True for any address SIS Sync must not connect to.

    Only globally reachable unicast is allowed: `is_global` alone misses nothing private
    (carrier-grade NAT 100.64/10 is neither private nor global), and multicast is refused on
    top of it. An IPv6 address that carries an IPv4 one is judged by that one as well.
    """
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if any(blocked(a) for a in inner):
            return True
        if inner and (address.ipv4_mapped or address in NAT64):
            return False  # the IPv4 address itself, as a dual stack or DNS64 writes it
    return (
        address in METADATA
        or not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def check_host(host: str, port: int | None = None) -> list[str]:
    """The addresses `host` resolves to; AddressNotAllowed if any is one we must not reach.

    Callers that connect should connect to one of the returned addresses, so a DNS answer
    that changes between the check and the connection cannot smuggle in an internal address.
    With SIS_SYNC_ALLOW_PRIVATE_HOSTS on (development, tests) nothing is checked and the list
    is empty: connect by name.
    """
    if settings.SIS_SYNC_ALLOW_PRIVATE_HOSTS:
        return []
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise AddressNotAllowed(f"the host {host!r} cannot be resolved") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if blocked(address):
            raise AddressNotAllowed(
                f"the host {host!r} resolves to {address}, an internal address; "
                "SIS Sync only connects to public hosts"
            )
        addresses.append(str(address))
    return addresses
