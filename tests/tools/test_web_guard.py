"""SSRF attack table: hostile URLs, an injected resolver and a fake network; nothing leaves the process."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

import httpcore
import pytest

from lector.tools.base import ToolContext
from lector.tools.web.fetch import WebFetch
from lector.tools.web.guard import AddressBlocked, AllowList, Blocked, NetGuard, describe_address, parse_ip_literal
from lector.tools.web.transport import BoundedDecoder

PUBLIC = "93.184.216.34"

DNS: dict[str, list[str]] = {
    "example.com": [PUBLIC],
    "internal.test": ["10.1.2.3"],
    "mixed.test": [PUBLIC, "10.0.0.7"],
    "mixed6.test": ["2606:4700::1111", "fd12:3456::1"],
    "nat64meta.test": ["64:ff9b::a9fe:a9fe"],
    "mapped.test": ["::ffff:192.168.0.1"],
    "cgnat.test": ["100.64.3.4"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "linklocal6.test": ["fe80::1"],
    "redir-private.test": ["93.184.216.40"],
    "redir-file.test": ["93.184.216.41"],
    "redir-meta.test": ["93.184.216.42"],
    "loop.test": ["93.184.216.43"],
    "redir-cred.test": ["93.184.216.44"],
    **{f"hop{i}.test": [f"93.184.217.{i}"] for i in range(10)},
}


def redirect(location: str, status: int = 302) -> list[bytes]:
    return [f"HTTP/1.1 {status} Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()]


def ok(body: bytes = b"hello", ctype: str = "text/plain") -> list[bytes]:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return [head.encode() + body]


RESPONSES: dict[str, list[bytes]] = {
    PUBLIC: ok(),
    "93.184.216.40": redirect("http://10.0.0.1/admin"),
    "93.184.216.41": redirect("file:///etc/passwd"),
    "93.184.216.42": redirect("http://[::ffff:169.254.169.254]/latest/meta-data/", 301),
    "93.184.216.43": redirect("http://loop.test/", 307),
    "93.184.216.44": redirect("http://admin:secret@example.com/"),
    **{f"93.184.217.{i}": redirect(f"http://hop{i + 1}.test/") for i in range(10)},
}


class FakeNet(httpcore.AsyncNetworkBackend):
    """Canned HTTP responses per IP address; records every connection attempt."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[object] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if host not in RESPONSES:
            raise httpcore.ConnectError(f"fake network: no route to {host}")
        return httpcore.AsyncMockStream(list(RESPONSES[host]))

    async def sleep(self, seconds: float) -> None:
        return None


def dict_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


class Rebinder:
    """Answers a public address first, then a private one (DNS rebinding)."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        if host != "rebind.test":
            raise OSError("unknown")
        self.calls += 1
        return [self.answers[min(self.calls - 1, 1)]]


RESPONSES["93.184.216.50"] = redirect("http://rebind.test/again")

META = "a cloud metadata address"

HOSTILE: list[tuple[str, str]] = [
    # schemes
    ("file:///etc/passwd", "scheme 'file' is not allowed"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not allowed"),
    ("ftp://example.com/pub", "scheme 'ftp' is not allowed"),
    ("data:text/html,<script>alert(1)</script>", "scheme 'data' is not allowed"),
    ("javascript:alert(document.cookie)", "scheme 'javascript' is not allowed"),
    ("dict://127.0.0.1:11211/stats", "scheme 'dict' is not allowed"),
    ("//example.com/no-scheme", "scheme missing"),
    # loopback in every spelling
    ("http://127.0.0.1/", "blocked: 127.0.0.1 is a loopback address"),
    ("http://127.1/", "127.0.0.1 is a loopback address"),
    ("http://0x7f000001/", "127.0.0.1 is a loopback address"),
    ("http://017700000001/", "127.0.0.1 is a loopback address"),
    ("http://2130706433/", "127.0.0.1 is a loopback address"),
    ("http://0x7f.0.0.1/", "127.0.0.1 is a loopback address"),
    ("http://127.0.0.1./", "127.0.0.1 is a loopback address"),
    ("http://[::1]:8080/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1, a loopback"),
    ("http://[::127.0.0.1]/", "IPv4-compatible form of 127.0.0.1, a loopback"),
    ("http://localhost/", "localhost is a loopback name"),
    ("http://localhost./", "localhost is a loopback name"),
    ("HTTP://LOCALHOST:8000/", "localhost is a loopback name"),
    ("http://admin.localhost/", "admin.localhost is a loopback name"),
    ("http://127.0.0.1.nip.io/", "resolves to 127.0.0.1, a loopback address"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    # private, CGNAT, link-local, special ranges
    ("http://10.0.0.5/", "blocked: 10.0.0.5 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://[fc00::1]/", "a private address"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fec0::1]/", "site-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://192.0.2.1/", "documentation"),
    ("http://[2001:db8::1]/", "documentation"),
    ("http://198.18.0.1/", "benchmarking"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "broadcast"),
    # cloud metadata, in all encodings
    ("http://169.254.169.254/latest/meta-data/", META),
    ("http://0xa9fea9fe/", META),
    ("http://2852039166/", META),
    ("http://0251.0376.0251.0376/", META),
    ("http://169.254.43518/", META),
    ("http://0xa9.0xfe.0xa9.0xfe/", META),
    ("http://[::ffff:169.254.169.254]/", META),
    ("http://[::ffff:a9fe:a9fe]/", META),
    ("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254, " + META),
    ("http://[64:ff9b::169.254.169.254]/", "NAT64 form of 169.254.169.254"),
    ("http://[2002:a9fe:a9fe::]/", "6to4 form of 169.254.169.254"),
    ("http://100.100.100.200/latest/meta-data/", META),
    ("http://[fd00:ec2::254]/", META),
    ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata name"),
    # other IPv6 embeddings
    ("http://[64:ff9b:1::a00:5]/", "NAT64 form of 10.0.0.5, a private address"),
    ("http://[2002:c0a8:101::1]/", "6to4 form of 192.168.1.1"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo form of 127.0.0.1"),
    # names that resolve badly
    ("http://internal.test/", "internal.test resolves to 10.1.2.3, a private address"),
    ("http://mixed.test/", "mixed.test resolves to 10.0.0.7, a private address"),
    ("http://mixed6.test/", "resolves to fd12:3456::1, a private address"),
    ("http://nat64meta.test/", "NAT64 form of 169.254.169.254"),
    ("http://mapped.test/", "IPv4-mapped form of 192.168.0.1"),
    ("http://cgnat.test/", "CGNAT"),
    ("http://linklocal6.test/", "link-local"),
    ("http://no-such-host.test/", "DNS lookup failed for no-such-host.test"),
    # credentials, backslashes, malformed
    ("http://example.com@127.0.0.1/", "credentials"),
    ("http://user:pass@example.com/", "credentials"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://127.0.0.1\\.example.com/", "backslash"),
    ("http://example.com /", "whitespace"),
    ("http://exa%6dple.com/", "bad host name"),
    ("http://[fe80::1%25eth0]/", "invalid URL"),
    ("http://１２７.０.０.１/", "invalid URL"),
    ("http://ⓛocalhost/", "invalid URL"),
    ("http://example.com:99999/", "bad port"),
    ("http://1.2.3.4.5/", "bad IPv4 address"),
    ("http://089.1.1.1/", "IPv4 address"),
    ("http:///etc/passwd", "no host"),
    ("http://example.com/" + "a" * 3000, "URL too long"),
    # redirects, validated hop by hop
    ("http://redir-private.test/", "to http://10.0.0.1/admin refused: blocked: 10.0.0.1 is a private"),
    ("http://redir-file.test/", "refused: blocked: scheme 'file' is not allowed"),
    ("http://redir-meta.test/", META),
    ("http://redir-cred.test/", "credentials"),
    ("http://loop.test/", "redirect loop"),
    ("http://hop0.test/", "too many redirects (6 > 5)"),
]


def make_tool(net: FakeNet, resolver: object = None, **kw: object) -> WebFetch:
    return WebFetch(
        resolver=resolver or dict_resolver(DNS),  # type: ignore[arg-type]
        policy="off",
        network_backend=net,
        timeout=5,
        **{"allow_hosts": (), **kw},  # type: ignore[arg-type]
    )


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 30
    assert len({url for url, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[u[:60] for u, _ in HOSTILE])
async def test_hostile_url_is_refused(url: str, reason: str) -> None:
    net = FakeNet()
    result = await make_tool(net).run(WebFetch.Args(url=url), ToolContext())
    assert result.error, result.content
    assert reason in result.content
    for host, _ in net.connects:  # whatever was reached was a validated public address
        assert describe_address(ipaddress.ip_address(host)) is None


async def test_dns_rebinding_is_caught_on_the_next_hop() -> None:
    net = FakeNet()
    rebinder = Rebinder("93.184.216.50", "127.0.0.1")
    result = await make_tool(net, resolver=rebinder).run(WebFetch.Args(url="http://rebind.test/"), ToolContext())
    assert result.error
    assert "rebind.test resolves to 127.0.0.1, a loopback address" in result.content
    assert net.connects == [("93.184.216.50", 80)]


async def test_connection_goes_to_the_validated_address_only() -> None:
    net = FakeNet()
    result = await make_tool(net).run(WebFetch.Args(url="http://example.com/"), ToolContext())
    assert not result.error, result.content
    assert "hello" in result.content
    assert net.connects == [(PUBLIC, 80)]


async def test_a_fine_redirect_chain_is_followed() -> None:
    net = FakeNet()
    result = await make_tool(net, max_redirects=10).run(WebFetch.Args(url="http://hop5.test/"), ToolContext())
    assert result.error  # hop9 redirects to hop10, which does not resolve
    assert "redirect to http://hop10.test/ refused: DNS lookup failed for hop10.test" in result.content
    assert [h for h, _ in net.connects] == [f"93.184.217.{i}" for i in range(5, 10)]


def test_ip_literal_forms() -> None:
    assert str(parse_ip_literal("127.1")) == "127.0.0.1"
    assert str(parse_ip_literal("0x7f.1")) == "127.0.0.1"
    assert str(parse_ip_literal("10.1.65535")) == "10.1.255.255"
    assert str(parse_ip_literal("0xc0.0250.1")) == "192.168.0.1"
    assert parse_ip_literal("example.com") is None
    assert parse_ip_literal("a1.example") is None
    with pytest.raises(Blocked):
        parse_ip_literal("256.1.1.1")
    with pytest.raises(Blocked):
        parse_ip_literal("example.99")


def test_public_addresses_pass() -> None:
    for text in ("93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1"):
        assert describe_address(ipaddress.ip_address(text)) is None, text


async def test_allowlist_is_explicit_and_narrow() -> None:
    guard = NetGuard(resolver=dict_resolver({"dev.test": ["127.0.0.1"]}), allow_hosts=["127.0.0.1:8080"])
    assert (await guard.check("http://127.0.0.1:8080/x")).addresses == ("127.0.0.1",)
    assert (await guard.check("http://dev.test:8080/")).addresses == ("127.0.0.1",)
    with pytest.raises(Blocked, match="loopback"):
        await guard.check("http://127.0.0.1:8081/")
    with pytest.raises(Blocked, match="loopback"):
        await NetGuard(resolver=dict_resolver({})).check("http://127.0.0.1:8080/")
    meta = NetGuard(allow_hosts=["169.254.169.254", "[::ffff:169.254.169.254]"])
    with pytest.raises(Blocked, match="metadata"):
        await meta.check("http://169.254.169.254/")
    with pytest.raises(Blocked, match="metadata"):
        await meta.check("http://[::ffff:169.254.169.254]/")
    assert AllowList(["[::1]:9000"]).allows("::1", 9000)
    assert AllowList(["localhost"]).allows("localhost", 1234)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/", "http://[::1]:8080/", "http://localhost:8080/", "http://dev.test:8080/"],
)
async def test_the_refusal_names_an_allow_list_entry_that_lets_the_url_through(url: str) -> None:
    resolver = dict_resolver({"dev.test": ["10.0.0.5"], "localhost": ["127.0.0.1"]})
    with pytest.raises(AddressBlocked) as refused:
        await NetGuard(resolver=resolver).check(url)
    allowed = NetGuard(resolver=resolver, allow_hosts=[refused.value.allow])
    assert (await allowed.check(url)).port == 8080
    with pytest.raises(ValueError):
        AllowList(["http://x/"])


def test_bounded_decoder_stops_a_gzip_bomb() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), compresslevel=9)
    decoder = BoundedDecoder("gzip")
    out = decoder.feed(bomb, 1024 * 1024)
    assert len(out) == 1024 * 1024 and decoder.overflow
    small = BoundedDecoder("deflate")
    import zlib

    assert small.feed(zlib.compress(b"abc"), 100) == b"abc" and not small.overflow
    raw = BoundedDecoder("deflate")
    comp = zlib.compressobj(wbits=-15)
    assert raw.feed(comp.compress(b"xyz") + comp.flush(), 100) == b"xyz"


async def test_idn_hosts_resolve_in_punycode() -> None:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    target = await NetGuard(resolver=resolver).check("https://Bücher.example./path")
    assert target.host == "xn--bcher-kva.example." and target.port == 443
    assert asked == ["xn--bcher-kva.example"] and target.addresses == (PUBLIC,)
