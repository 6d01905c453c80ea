"""Server settings, the data folder and the access token."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    return Path(os.environ.get("LECTOR_DATA") or Path.home() / ".local" / "share" / "lector")


def load_or_create_token(data_dir: Path) -> str:
    """The token stored in the data folder; generated (0600) on first run."""
    path = data_dir / "token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    data_dir: Path = field(default_factory=default_data_dir)
    token: str | None = None
    """None: load or create the token in the data folder."""
    model: str | None = None
    """Backend spec for llm.factory.make_backend; None means the default embedded model."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Extra Host header values accepted besides loopback names."""
    extension_ids: list[str] = field(default_factory=list)
    """Chrome extension ids whose origin may call the API (CORS)."""
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 50_000_000
    max_page_chars: int = 5_000_000
    rate_per_minute: int = 600
    rate_burst: int = 120
    max_steps: int = 8
    tools: list[str] = field(default_factory=lambda: ["calculator", "code_interpreter", "web_fetch"])
    fetch_allow_hosts: list[str] = field(default_factory=list)
    mcp_config: Path | None = None
    """A {"mcpServers": ...} JSON file whose servers' tools are added (tools/mcp/config.py)."""
    """host:port pairs web_fetch may reach despite the SSRF rules (off by default; for tests)."""

    def resolved_token(self) -> str:
        if self.token is None:
            self.token = os.environ.get("LECTOR_TOKEN") or load_or_create_token(self.data_dir)
        return self.token

    def check_binding(self) -> None:
        """Refuse to listen beyond loopback unless a token was chosen on purpose."""
        explicit = self.token is not None or bool(os.environ.get("LECTOR_TOKEN"))
        if not is_loopback(self.host) and not explicit:
            raise SystemExit(
                f"refusing to bind {self.host}: listening beyond loopback needs an explicit access token "
                "(set LECTOR_TOKEN or pass --token)"
            )

    def host_allowlist(self) -> set[str]:
        names = {"127.0.0.1", "localhost", "[::1]", *self.allowed_hosts}
        if not is_loopback(self.host) and self.host not in ("0.0.0.0", "::"):
            names.add(self.host)
        return {f"{n}:{self.port}" for n in names} | names

    def cors_origins(self) -> list[str]:
        ui = [f"http://{h}:{self.port}" for h in ("127.0.0.1", "localhost", *self.allowed_hosts)]
        return ui + [f"chrome-extension://{i}" for i in self.extension_ids]
