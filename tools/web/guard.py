"""SSRF guard: which URLs and addresses a fetch may reach.

Checks the addresses a host name RESOLVES to (every A/AAAA record), not the string in the URL,
and decodes IPv4 embedded in IPv6 (mapped, compatible, 6to4, NAT64, Teredo) so that e.g.
`64:ff9b::a9fe:a9fe` is seen as the metadata address it translates to.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Iterable[str]] | Iterable[str]]
"""(host, port) -> IP address strings. Sync or async. Raise or return nothing when the name is unknown."""

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = ("http", "https")

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IPv6
        "fd00:ec2::23",  # AWS EKS pod identity IPv6
    )
)
BLOCKED_NAMES = ("localhost", "metadata.google.internal", "metadata.goog")

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_RANGES: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [
    (_V4("0.0.0.0/8"), "unspecified ('this network')"),
    (_V4("100.64.0.0/10"), "shared CGNAT (100.64.0.0/10)"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("192.0.0.0/24"), "reserved (IETF protocol assignments)"),
    (_V4("255.255.255.255/32"), "broadcast"),
    (_V4("240.0.0.0/4"), "reserved"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("2001:2::/48"), "benchmarking"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
]
_NAT64 = _V6("64:ff9b::/96")
_NAT64_LOCAL = _V6("64:ff9b:1::/48")
_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


class Blocked(Exception):
    """The URL may not be fetched; the message says why, short and plain."""


class LookupFailed(Blocked):
    """The name did not resolve."""


class AddressBlocked(Blocked):
    """A local or private address, which an allow-list entry (`allow`, as `host:port`) may exempt."""

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.allow = allow


_FLAGS_FIRST = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
)
"""Properties of an address checked before the named ranges, with the reason each gives."""
_FLAGS_LAST = (
    ("is_site_local", "a site-local address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
)
"""Checked after the named ranges, whose labels are more precise."""


def describe_address(ip: IPAddress) -> str | None:
    """Why an address must not be reached ('a private address'), or None when it is public."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        for label, embedded in _embedded_ipv4(ip):
            reason = describe_address(embedded)
            if reason:
                return f"{label} of {embedded}, {reason}"
        if ip in _NAT64 or ip.sixtofour is not None:
            return None  # a translator's route to a public IPv4 address (IPv6-only networks use NAT64)
    for flag, reason in _FLAGS_FIRST:
        if getattr(ip, flag):
            return reason
    for network, label in _RANGES:
        if ip.version == network.version and ip in network:
            return f"a{'n' if label[0] in 'aeiou' else ''} {label} address"
    for flag, reason in _FLAGS_LAST:
        if getattr(ip, flag, False):  # only IPv6 addresses have is_site_local
            return reason
    return None if ip.is_global else "a non-public address"


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """IPv4 addresses that an IPv6 address carries (and would reach through a translator)."""
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        found.append(("an IPv4-mapped form", ip.ipv4_mapped))
    elif int(ip) >> 32 == 0 and int(ip) > 1:
        found.append(("an IPv4-compatible form", low32))
    if ip.sixtofour is not None:
        found.append(("a 6to4 form", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found.extend((("a Teredo form", client), ("a Teredo server", server)))
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        found.append(("a NAT64 form", low32))
    return found


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host string denotes by itself, in every form resolvers accept
    (`127.1`, `0x7f000001`, `017700000001`, `2130706433`, `::ffff:127.0.0.1`); None for a name.
    Raises Blocked for a malformed number-like host."""
    host = host.lower().rstrip(".") if host not in (".", "") else host
    if ":" in host:
        if "%" in host:
            raise Blocked(f"invalid URL: IPv6 zone identifiers are not allowed ({host!r})")
        try:
            return ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            raise Blocked(f"invalid URL: bad IPv6 address {host!r}") from None
    parts = host.split(".")
    if not parts or not _IPV4_PART.match(parts[-1]):
        return None
    numbers: list[int] = []
    for part in parts:
        if not _IPV4_PART.match(part):
            raise Blocked(f"invalid URL: bad IPv4 address {host!r}")
        if part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not set(part) <= set("01234567"):
                raise Blocked(f"invalid URL: bad IPv4 address {host!r}")
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise Blocked(f"invalid URL: bad IPv4 address {host!r}")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


@dataclass(frozen=True)
class Target:
    """A URL that passed every check, with the addresses to connect to (and only to)."""

    url: httpx.URL
    host: str
    """The host as the HTTP layer sees it (ASCII, IDNA-encoded; IPv6 without brackets)."""
    port: int
    addresses: tuple[str, ...]


class AllowList:
    """Explicit exceptions to the address rules: 'host', 'host:port', '[v6]:port'. Off when empty.
    Entries match the URL's host name or a resolved address. Metadata addresses stay blocked."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.entries: set[tuple[str, int | None]] = set()
        for entry in entries:
            self.entries.add(self._parse(entry))

    @staticmethod
    def _parse(entry: str) -> tuple[str, int | None]:
        entry = entry.strip().lower()
        match = re.fullmatch(r"\[([0-9a-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?|([0-9a-f:.]+)", entry)
        if not match:
            raise ValueError(f"bad allow_hosts entry: {entry!r}")
        host = match.group(1) or match.group(3) or match.group(5)
        port = match.group(2) or match.group(4)
        literal = parse_ip_literal(host)
        return (str(literal) if literal else host.rstrip(".")), (int(port) if port else None)

    def allows(self, host_or_ip: str, port: int) -> bool:
        key = host_or_ip.lower().rstrip(".")
        return (key, port) in self.entries or (key, None) in self.entries

    def __bool__(self) -> bool:
        return bool(self.entries)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every A/AAAA address of a name, through the OS resolver."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise LookupFailed(f"DNS lookup failed for {host}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def parse_url(url: str) -> tuple[httpx.URL, str, int]:
    """Syntax checks that need no lookup: length, characters, scheme, credentials, host, port."""
    if len(url) > MAX_URL_LENGTH:
        raise Blocked(f"URL too long ({len(url)} > {MAX_URL_LENGTH} characters)")
    if "\\" in url:
        raise Blocked("invalid URL: it contains a backslash")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Blocked("invalid URL: it contains whitespace or control characters")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ALLOWED_SCHEMES:
        shown = f"'{scheme}'" if scheme and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "missing"
        raise Blocked(f"blocked: scheme {shown} is not allowed (only http and https)")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        _explain_unparsable_host(url)
        raise Blocked(f"invalid URL: {exc}") from None
    if parsed.userinfo:
        raise Blocked("blocked: URLs with credentials (user@host) are not allowed")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise Blocked("invalid URL: it has no host")
    if ":" not in host and not _HOSTNAME.match(host.rstrip(".")):
        raise Blocked(f"invalid URL: bad host name {host!r}")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise Blocked(f"invalid URL: bad port {port}")
    return parsed, host, port


def _explain_unparsable_host(url: str) -> None:
    """A host the HTTP layer refuses may still be an address in a legacy spelling: name it."""
    try:
        host = urlsplit(url).hostname or ""
        ip = parse_ip_literal(host) if host else None
    except (Blocked, ValueError):
        return
    reason = describe_address(ip) if ip else None
    if reason:
        raise Blocked(f"blocked: {ip} is {reason}")


class NetGuard:
    """Turns a URL into a Target: syntax checks, resolution, and a verdict on every address."""

    def __init__(self, resolver: Resolver | None = None, allow_hosts: Iterable[str] = ()) -> None:
        self.resolver: Resolver = resolver or system_resolver
        self.allow = AllowList(allow_hosts)

    async def check(self, url: str) -> Target:
        parsed, host, port = parse_url(url)
        literal = parse_ip_literal(host)
        if literal is not None:
            self._judge(literal, port, name=None)
            return Target(parsed, host, port, (str(literal),))
        name = host.rstrip(".")
        if (name in BLOCKED_NAMES or name.endswith(".localhost")) and not self.allow.allows(name, port):
            if "localhost" in name:
                raise AddressBlocked(f"blocked: {name} is a loopback name", allow=f"{name}:{port}")
            raise Blocked(f"blocked: {name} is a cloud metadata name")
        addresses = await self._resolve(name, port)
        for ip in addresses:
            self._judge(ip, port, name=name)
        return Target(parsed, host, port, tuple(str(ip) for ip in addresses))

    async def _resolve(self, name: str, port: int) -> list[IPAddress]:
        try:
            result = self.resolver(name, port)
            raw = await result if inspect.isawaitable(result) else result
            found = list(raw)
        except Blocked:
            raise
        except (OSError, ValueError, LookupError) as exc:
            raise LookupFailed(f"DNS lookup failed for {name}: {exc}") from None
        if not found:
            raise LookupFailed(f"DNS lookup failed for {name}: no addresses")
        addresses: list[IPAddress] = []
        for text in found:
            try:
                addresses.append(ipaddress.ip_address(str(text).split("%")[0]))
            except ValueError:
                raise LookupFailed(f"DNS lookup failed for {name}: bad address {text!r}") from None
        return list(dict.fromkeys(addresses))

    def _judge(self, ip: IPAddress, port: int, name: str | None) -> None:
        reason = describe_address(ip)
        if reason is None:
            return
        metadata = "metadata" in reason  # no allow-list entry exempts a metadata address, however spelled
        if not metadata and (self.allow.allows(str(ip), port) or (name is not None and self.allow.allows(name, port))):
            return
        message = f"blocked: {ip} is {reason}" if name is None else f"blocked: {name} resolves to {ip}, {reason}"
        if metadata:
            raise Blocked(message)
        host = name or (f"[{ip}]" if ip.version == 6 else str(ip))
        raise AddressBlocked(message, allow=f"{host}:{port}")
