"""Outbound address check (SPEC §2): providers may not point us at internal addresses.

A host that resolves to a loopback, private, link-local, reserved or cloud-metadata address is
refused unless SIS_SYNC_ALLOW_PRIVATE_HOSTS is on (development and tests).
"""

from __future__ import annotations

import ipaddress
import socket

from django.conf import settings

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class AddressNotAllowed(ValueError):
    pass


def _blocked(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address in METADATA
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
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
        if _blocked(address):
            raise AddressNotAllowed(
                f"the host {host!r} resolves to {address}, an internal address; "
                "SIS Sync only connects to public hosts"
            )
        addresses.append(str(address))
    return addresses
