"""web_fetch against a real loopback server (reached only through the allowlist), and the URL policy."""

from __future__ import annotations

import gzip
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lector.llm.messages import ToolCall
from lector.tools.base import ToolContext
from lector.tools.registry import ToolRegistry
from lector.tools.web.fetch import WebFetch
from lector.tools.web.policy import STATE_KEY, UrlPolicy, normalize_url, remember_urls, urls_in_text

PAGE = """<!doctype html><html><head><title>The Lighthouse Keeper</title></head><body>
<nav><a href="/">Home</a> <a href="/plain.txt">Plain</a></nav>
<article><h1>The Lighthouse Keeper</h1>
<p>Every evening the keeper climbed one hundred and twelve steps to light the great lamp.
The ships that passed the rocky cape owed their safety to his patience and his care.</p>
<p>In winter the storms were so strong that the tower shook, yet the light never failed once
in forty years of service, a record that the harbour town still celebrates each spring.</p>
<p>Read <a href="chapter2.html#top">the second chapter</a> or
<a href="https://books.example.org/keeper?id=7">the book page</a>.</p>
<script>var secret = "do not show";</script>
</article></body></html>"""
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
LONG = ("All work and no play makes Jack a dull boy. " * 2000)[:85000]
BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]] = []

    def log_message(self, format: str, *args: object) -> None:
        return None

    def send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, **headers: str) -> None:
        self.send(302, b"", "text/plain", Location=location, **headers)

    def do_GET(self) -> None:  # noqa: C901 - a routing table
        Handler.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        path = self.path
        if path == "/page.html":
            self.send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/plain.txt":
            self.send(200, b"Plain text, kept as it is.\n  Indented line.\n", "text/plain")
        elif path == "/data.json":
            self.send(200, b'{"b":[1,2],"a":"x"}', "application/json")
        elif path == "/report.pdf":
            self.send(200, PDF, "application/pdf")
        elif path == "/long.txt":
            self.send(200, LONG.encode(), "text/plain; charset=utf-8")
        elif path.startswith("/r") and path[2:].isdigit():
            n = int(path[2:])
            self.redirect(f"/r{n - 1}" if n > 1 else "/plain.txt")
        elif path == "/to-private":
            self.redirect("http://10.0.0.1/")
        elif path == "/to-loopback-name":
            self.redirect(f"http://localhost:{self.server.server_address[1]}/plain.txt")  # type: ignore[index]
        elif path == "/set-cookie":
            self.redirect("/echo", Set_Cookie="session=abc123; Path=/")
        elif path == "/echo":
            body = json.dumps({k: v for k, v in Handler.seen[-1].items()}).encode()
            self.send(200, body, "application/json")
        elif path == "/slow":
            time.sleep(3)
            self.send(200, b"late", "text/plain")
        elif path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(30):
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.1)
        elif path == "/big.txt":
            self.send(200, b"y" * (3 * 1024 * 1024), "text/plain")
        elif path == "/big.pdf":
            self.send(200, b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024), "application/pdf")
        elif path == "/bomb":
            self.send(200, BOMB, "text/plain", Content_Encoding="gzip")
        elif path == "/gz.txt":
            self.send(200, gzip.compress(b"compressed hello"), "text/plain", Content_Encoding="gzip")
        elif path == "/fat-headers":
            self.send_response(200)
            for i in range(40):
                self.send_header(f"X-Filler-{i}", "z" * 1000)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        elif path == "/download":
            self.send(
                200, PDF, "application/octet-stream", Content_Disposition='attachment; filename="../../escape.pdf"'
            )
        elif path == "/missing":
            self.send(404, b"<html><body>No such page</body></html>", "text/html")
        else:
            self.send(404, b"not found", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def base_url(srv: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def make(srv: ThreadingHTTPServer, tmp_path: Path, **kw: object) -> WebFetch:
    options: dict[str, object] = {
        "allow_hosts": {f"127.0.0.1:{srv.server_address[1]}"},
        "policy": "off",
        "download_dir": tmp_path,
        "timeout": 5.0,
    }
    options.update(kw)
    return WebFetch(**options)  # type: ignore[arg-type]


async def fetch(tool: WebFetch, url: str, ctx: ToolContext | None = None):
    return await tool.run(tool.Args(url=url), ctx or ToolContext())


async def test_html_becomes_text_title_and_links(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    url = base_url(server) + "/page.html"
    result = await fetch(make(server, tmp_path), url)
    assert not result.error, result.content
    assert result.source == url
    assert result.content.startswith(f"Source: {url}\nTitle: The Lighthouse Keeper")
    assert "one hundred and twelve steps" in result.content
    assert "do not show" not in result.content
    assert f"<{base_url(server)}/chapter2.html>" in result.content
    assert "<https://books.example.org/keeper?id=7>" in result.content
    assert "Links (4 of 4)" in result.content


async def test_plain_text_passes_as_it_is(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/plain.txt")
    assert result.content.endswith("Plain text, kept as it is.\n  Indented line.\n")


async def test_json_is_pretty(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/data.json")
    assert '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "x"\n}' in result.content


async def test_gzip_is_decoded(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/gz.txt")
    assert result.content.endswith("compressed hello")


async def test_pdf_is_saved_as_a_file(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    ctx = ToolContext(conversation_id="conv/../42")
    result = await fetch(make(server, tmp_path), base_url(server) + "/report.pdf", ctx)
    assert not result.error, result.content
    assert len(result.files) == 1
    saved = Path(result.files[0])
    assert saved.read_bytes() == PDF
    assert saved.parent.parent == tmp_path and saved.name == "report.pdf"
    assert "document pipeline" in result.content
    again = await fetch(make(server, tmp_path), base_url(server) + "/report.pdf", ctx)
    assert Path(again.files[0]).name == "report-1.pdf"


async def test_long_page_is_truncated_with_a_marker(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/long.txt")
    assert "[truncated: showed 20000 of 85000 characters]" in result.content


async def test_redirect_chain_is_followed_hop_by_hop(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    Handler.seen.clear()
    result = await fetch(make(server, tmp_path), base_url(server) + "/r3")
    assert not result.error, result.content
    assert "Plain text" in result.content
    assert result.source == base_url(server) + "/plain.txt"
    assert [s["path"] for s in Handler.seen] == ["/r3", "/r2", "/r1", "/plain.txt"]
    too_many = await fetch(make(server, tmp_path, max_redirects=2), base_url(server) + "/r3")
    assert too_many.error and "too many redirects (3 > 2)" in too_many.content


async def test_redirect_to_private_or_loopback_name_is_refused(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    tool = make(server, tmp_path)
    result = await fetch(tool, base_url(server) + "/to-private")
    assert result.error and "10.0.0.1 is a private address" in result.content
    result = await fetch(tool, base_url(server) + "/to-loopback-name")
    assert result.error and "localhost is a loopback name" in result.content


async def test_no_cookies_and_a_user_agent(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/set-cookie")
    echoed = json.loads(result.content.split("\n\n", 1)[1])
    assert "cookie" not in echoed
    assert echoed["user-agent"].startswith("Lector/")


async def test_slow_server_hits_the_timeout(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    for path in ("/slow", "/drip"):
        start = time.monotonic()
        result = await fetch(make(server, tmp_path, timeout=0.5), base_url(server) + path)
        assert result.error and "timed out after 0.5 s" in result.content
        assert time.monotonic() - start < 2.5


async def test_oversized_bodies_are_cut(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    tool = make(server, tmp_path, max_bytes=1024 * 1024, max_file_bytes=1024 * 1024)
    text = await fetch(tool, base_url(server) + "/big.txt")
    assert "[cut: the response is larger than 1 MB" in text.content
    assert "of 1048576 characters]" in text.content
    pdf = await fetch(tool, base_url(server) + "/big.pdf")
    assert pdf.error and "response larger than 1 MB" in pdf.content
    assert not any(tmp_path.rglob("*.pdf"))


async def test_gzip_bomb_is_stopped(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path, max_bytes=1024 * 1024), base_url(server) + "/bomb")
    assert result.error and "larger than 1 MB (stopped reading)" in result.content
    assert len(result.content) < 1000


async def test_http_errors_are_reported(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/missing")
    assert result.error and "HTTP 404" in result.content and "No such page" in result.content


async def test_loopback_is_refused_without_the_allowlist(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    Handler.seen.clear()
    result = await fetch(WebFetch(allow_hosts=(), policy="off", download_dir=tmp_path), base_url(server) + "/plain.txt")
    assert result.error and "blocked: 127.0.0.1 is a loopback address" in result.content
    port = server.server_address[1]
    assert f"set LECTOR_WEB_FETCH_ALLOW_HOSTS=127.0.0.1:{port}" in result.content
    other_port = make(server, tmp_path, allow_hosts={"127.0.0.1:1"})
    result = await fetch(other_port, base_url(server) + "/plain.txt")
    assert result.error and "loopback" in result.content
    assert Handler.seen == []


async def test_a_metadata_address_gets_no_allow_list_hint(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(WebFetch(policy="off", download_dir=tmp_path), "http://169.254.169.254/latest/meta-data/")
    assert result.error and "cloud metadata" in result.content
    assert "LECTOR_WEB_FETCH_ALLOW_HOSTS" not in result.content


async def test_connection_is_pinned_to_the_validated_address(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    """pinned.test exists in no DNS: the fetch works only because it connects to the address
    the injected resolver gave (once), while sending the real Host header."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]

    port = server.server_address[1]
    Handler.seen.clear()
    tool = make(server, tmp_path, resolver=resolver)
    result = await fetch(tool, f"http://pinned.test:{port}/echo")
    assert not result.error, result.content
    assert json.loads(result.content.split("\n\n", 1)[1])["host"] == f"pinned.test:{port}"
    assert calls == ["pinned.test"]
    rebound = await fetch(tool, f"http://pinned.test:{port}/plain.txt")
    assert rebound.error and "pinned.test resolves to 10.9.9.9, a private address" in rebound.content


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pinned.test",
            "-addext",
            "subjectAltName=DNS:pinned.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv, cert
    srv.shutdown()
    srv.server_close()


async def test_https_uses_the_real_host_name_for_sni_and_certificate(
    tls_server: tuple[ThreadingHTTPServer, Path], tmp_path: Path
) -> None:
    srv, cert = tls_server
    port = srv.server_address[1]
    trust = ssl.create_default_context(cafile=str(cert))
    tool = make(srv, tmp_path, resolver=lambda host, p: ["127.0.0.1"], verify=trust)
    result = await fetch(tool, f"https://pinned.test:{port}/plain.txt")
    assert not result.error, result.content
    assert "Plain text" in result.content
    wrong = await fetch(tool, f"https://other.test:{port}/plain.txt")
    assert wrong.error and "TLS error with other.test" in wrong.content
    assert "certificate is not valid for 'other.test'" in wrong.content, wrong.content


async def test_oversized_headers_are_refused(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/fat-headers")
    assert result.error and "response headers larger than 32 KB" in result.content


async def test_saved_file_name_cannot_escape_the_folder(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    result = await fetch(make(server, tmp_path), base_url(server) + "/download")
    saved = Path(result.files[0])
    assert saved.name == "escape.pdf" and saved.parent == tmp_path / "default"


async def test_proxy_environment_is_ignored(
    server: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.66.66.66:3128")
    monkeypatch.setenv("NO_PROXY", "")
    result = await fetch(make(server, tmp_path), base_url(server) + "/plain.txt")
    assert not result.error and "Plain text" in result.content


# --- URL policy ---------------------------------------------------------------------------------


async def test_policy_refuses_urls_not_in_the_conversation(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    tool = make(server, tmp_path, policy="conversation")
    url = base_url(server) + "/plain.txt"
    refused = await fetch(tool, url, ToolContext(user_texts=["Summarise the lighthouse story."]))
    assert refused.error
    assert refused.content.startswith(f"URL not in the conversation: {url}.")
    assert "only URLs the user gave or links from fetched pages" in refused.content


async def test_policy_allows_user_urls_then_links_of_fetched_pages(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    tool = make(server, tmp_path, policy="conversation")
    page = base_url(server) + "/page.html"
    ctx = ToolContext(user_texts=[f"Please read ({page}), thanks."])
    assert not (await fetch(tool, page, ctx)).error
    linked = await fetch(tool, base_url(server) + "/plain.txt", ctx)
    assert not linked.error, linked.content
    assert (await fetch(tool, base_url(server) + "/data.json", ctx)).error
    assert normalize_url(base_url(server) + "/chapter2.html") in ctx.state[STATE_KEY]


def test_urls_in_text() -> None:
    text = (
        "See https://Example.COM:443/a?b=1#frag, (http://x.test/path_(1)) and <https://y.test/q>. "
        "Also docs.python.org/3/library and mail bob@corp.example."
    )
    found = urls_in_text(text)
    assert "https://example.com/a?b=1" in found
    assert "http://x.test/path_(1)" in found
    assert "https://y.test/q" in found
    assert {"https://docs.python.org/3/library", "http://docs.python.org/3/library"} <= found
    assert not any("corp.example" in u for u in found)


def test_policy_modes() -> None:
    ctx = ToolContext(user_texts=["http://plain.test/page"])
    assert UrlPolicy().check("https://plain.test/page", ctx) is None  # scheme upgrade is fine
    assert UrlPolicy().check("https://plain.test/other", ctx) is not None
    assert UrlPolicy.off().check("https://anything.test/", ctx) is None
    domains = UrlPolicy.only_domains(["example.org"])
    assert domains.check("https://docs.example.org/x", ctx) is None
    refusal = domains.check("https://evil.test/?q=secret", ctx)
    assert refusal and "evil.test is not among the allowed domains (example.org)" in refusal
    assert UrlPolicy.coerce(["example.org"]).domains == frozenset({"example.org"})
    assert UrlPolicy.coerce("off").enabled is False
    remember_urls(ctx, ["https://from-a-page.test/x#y"])
    assert UrlPolicy().check("https://from-a-page.test/x", ctx) is None
    with pytest.raises(ValueError):
        UrlPolicy.coerce("sometimes")


async def test_through_the_registry(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    registry = ToolRegistry([make(server, tmp_path, policy="conversation")])
    url = base_url(server) + "/plain.txt"
    call = ToolCall(name="web_fetch", arguments=json.dumps({"url": url}))
    result = await registry.execute(call, ToolContext(user_texts=[f"fetch {url}"]))
    assert not result.error and result.source == url
    assert (await registry.execute(ToolCall(name="web_fetch", arguments="{}"))).error


def test_environment_opt_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LECTOR_WEB_FETCH_ALLOW_HOSTS", raising=False)
    monkeypatch.delenv("LECTOR_WEB_FETCH_POLICY", raising=False)
    default = WebFetch()
    assert not default.guard.allow and default.policy.enabled and default.policy.conversation
    monkeypatch.setenv("LECTOR_WEB_FETCH_ALLOW_HOSTS", "127.0.0.1:8765, [::1]:8765")
    monkeypatch.setenv("LECTOR_WEB_FETCH_POLICY", "example.org, example.net")
    tool = WebFetch()
    assert tool.guard.allow.allows("127.0.0.1", 8765) and not tool.guard.allow.allows("127.0.0.1", 80)
    assert tool.policy.domains == frozenset({"example.org", "example.net"}) and not tool.policy.conversation
    assert not WebFetch(allow_hosts=()).guard.allow
    monkeypatch.setenv("LECTOR_WEB_FETCH_POLICY", "off")
    assert not WebFetch().policy.enabled


def test_links_read_per_page_are_capped() -> None:
    from lector.tools.web.extract import MAX_PAGE_LINKS, html_to_page

    html = (
        "<html><head><title>Links</title></head><body>"
        + "".join(f"<p><a href='/p{i}'>page {i}</a></p>" for i in range(3 * MAX_PAGE_LINKS))
        + "</body></html>"
    )
    page = html_to_page(html, "http://example.test/")
    assert len(page.links) == MAX_PAGE_LINKS
    assert page.links[0] == ("page 0", "http://example.test/p0")


def test_a_page_without_title_uses_og_title_or_its_first_heading() -> None:
    from lector.tools.web.extract import html_to_page

    og = "<html><head><meta property='og:title' content='Shared  title'></head><body><h1>Head</h1></body></html>"
    assert html_to_page(og, "http://example.test/").title == "Shared title"
    heading = "<html><body><h1>The <b>Heading</b></h1><p>text</p></body></html>"
    assert html_to_page(heading, "http://example.test/").title == "The Heading"
