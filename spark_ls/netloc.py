"""Which hosts and browser origins count as this machine (for loopback-only listeners)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ::1 (brackets allowed)."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_origin(origin: str) -> bool:
    """An Origin header naming a page served from this machine (``null`` is not)."""
    try:
        return is_loopback_host(urlsplit(origin).hostname)
    except ValueError:
        return False
