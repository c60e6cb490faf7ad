"""Where a callback may go: an `https` URL whose host the deployment allows
(`CallbackAllowedHosts`), never to a private, loopback, link-local (the metadata service) or
otherwise non-public address - checked when the run is requested and again, on the addresses
the name resolves to then, when the callback is sent (a name may be pointed elsewhere in
between). The local stack alone may allow `http://127.0.0.1:<port>` and `localhost`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from threadline.errors import InvalidRequestError

MAX_URL_LENGTH = 2048
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
NOT_ALLOWED = "callback_url_not_allowed"
# A DNS name as it is looked up: labels of letters, digits and hyphens (IDNA-encoded).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# IPv6 ranges that carry or translate to an IPv4 address, or are no longer assigned, which
# `is_global` may call global: an address in them is never called back.
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "::/96",  # IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated
        "64:ff9b::/96",  # NAT64
        "64:ff9b:1::/48",  # local NAT64
        "2002::/16",  # 6to4
        "2001::/32",  # Teredo
        "fec0::/10",  # site-local
    )
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Iterable[str]]  # host, port -> addresses


class CallbackAddressRefused(Exception):
    """The callback's host resolves to an address Threadline never sends to."""


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, IPv4 first (Lambda outside a VPC has no IPv6 route)."""
    found = {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    return sorted(found, key=lambda address: (":" in address, address))


@dataclass(frozen=True)
class Destination:
    """A checked callback URL, and the addresses to connect to, in order."""

    url: SplitResult
    addresses: tuple[str, ...]

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)


class CallbackTargets:
    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        allow_local_http: bool = False,
        resolver: Resolver = resolve,
    ) -> None:
        self._allowed = frozenset(host.strip().lower() for host in allowed_hosts if host.strip())
        self._allow_local_http = allow_local_http
        self._resolver = resolver

    def accept(self, url: str) -> str:
        """The URL if a callback may be sent there; InvalidRequestError (400) otherwise."""
        parts = self._parts(url)
        host = parts.hostname or ""
        if self._local(parts):
            return url
        if parts.scheme != "https":
            raise _refused("must be an https URL")
        if not self._host_allowed(host):
            raise _refused(f"host {host!r} is not one this deployment sends callbacks to")
        literal = _ip(host)
        if literal is not None and not _public(literal):
            raise _refused("must not name a private, loopback or link-local address")
        return url

    def destination(self, url: str) -> Destination:
        """Check `url` again and resolve its host: where to connect. InvalidRequestError if
        it is no longer allowed, CallbackAddressRefused if a resolved address is not public."""
        self.accept(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = [host] if _ip(host) is not None else list(self._resolver(host, port))
        if not addresses:
            raise CallbackAddressRefused(f"{host} resolves to no address")
        if not self._local(parts):
            refused = [address for address in addresses if not _public(_address(address))]
            if refused:
                raise CallbackAddressRefused(f"{host} resolves to a non-public address")
        return Destination(url=parts, addresses=tuple(addresses))

    def _parts(self, url: str) -> SplitResult:
        if len(url) > MAX_URL_LENGTH:
            raise _refused(f"is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as error:
            raise _refused(f"is not a URL ({error})") from None
        if not parts.hostname or parts.username is not None or parts.password is not None:
            raise _refused("needs a host, and no user name or password")
        if _ip(parts.hostname) is None and not _dns_name(parts.hostname):
            raise _refused("must name its host in ASCII letters, digits, hyphens and dots")
        if parts.fragment:
            raise _refused("must not have a #fragment")
        return parts

    def _local(self, parts: SplitResult) -> bool:
        return (
            self._allow_local_http
            and parts.scheme == "http"
            and (parts.hostname or "") in LOCAL_HOSTS
        )

    def _host_allowed(self, host: str) -> bool:
        return host in self._allowed or any(
            allowed.startswith("*.") and host.endswith(allowed[1:]) for allowed in self._allowed
        )


def _refused(why: str) -> InvalidRequestError:
    return InvalidRequestError(NOT_ALLOWED, f"callback_url {why}")


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone index is not an address


def _dns_name(host: str) -> bool:
    labels = host.split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def _public(address: IPAddress) -> bool:
    """A globally routable unicast address (an IPv4-mapped IPv6 address as its IPv4 one)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif any(address in network for network in _REFUSED_V6):
            return False
    return address.is_global and not address.is_multicast
