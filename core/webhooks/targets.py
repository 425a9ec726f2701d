"""Where a webhook may point: ``http``/``https`` only, no credentials in the address, and no private, loopback,
link-local or reserved address — unless it lies in a network of ``CRM_WEBHOOK_ALLOW_NETWORKS``. The host is
resolved and every address it resolves to is checked, when the subscription is saved and again before each
attempt (an address that changed since is caught then)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from core.errors import ValidationError
from core.i18n import N_

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(setting: str) -> list[Network]:
    out: list[Network] = []
    for raw in setting.split(","):
        if raw.strip():
            out.append(ipaddress.ip_network(raw.strip(), strict=False))
    return out


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


async def check(url: str, allow: str, field: str = "url", *, must_resolve: bool = True) -> str:
    """The address, stripped, or a ``ValidationError`` on ``field`` saying what is wrong with it. When saving
    (``must_resolve`` False) a host that does not resolve yet is accepted: it is checked again before each send."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({field: N_("must be an http:// or https:// address")})
    if parts.username or parts.password:
        raise ValidationError({field: N_("must not carry a user name or password (use a token in the path)")})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationError({field: N_("has an invalid port")}) from None
    try:
        found = await asyncio.to_thread(socket.getaddrinfo, parts.hostname, port, 0, socket.SOCK_STREAM)
    except OSError:
        if not must_resolve:
            return url
        raise ValidationError({field: N_("names a host that cannot be resolved")}) from None
    networks = allowed_networks(allow)
    for info in found:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not _is_public(address) and not any(address in n for n in networks):
            raise ValidationError(
                {
                    field: N_(
                        "points to a private or loopback address (%(address)s), which "
                        "CRM_WEBHOOK_ALLOW_NETWORKS does not allow"
                    )
                    % {"address": address}
                }
            )
    return url
