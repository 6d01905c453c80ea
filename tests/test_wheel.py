"""The built wheel installs one top-level name, `lector`, beside distributions that own `llm/` and `tools/`.

A fresh venv gets two stand-in distributions (named like the PyPI projects `llm` and `tools`), then Lector's
wheel. Lector's own dependencies come from the project venv's site-packages through a path entry, so the
test needs no network; that entry runs no `.pth` file, so the project's editable install stays out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import time
import venv
from pathlib import Path

import httpx
import pytest

from tests.webui.live_server import free_port

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ("llm", "tools")


def run(*argv: str | Path, timeout: float = 300) -> str:
    """Run a command outside the checkout, so that `python -c` cannot import its root folders."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(a) for a in argv], cwd="/", env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_standin(name: str, where: Path) -> Path:
    source = where / f"src-{name}"
    (source / name).mkdir(parents=True)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{name}"
            version = "0.0.1"

            [tool.setuptools]
            packages = ["{name}"]
            """)
    )
    (source / name / "__init__.py").write_text(f'OWNER = "standin-{name}"\n')
    (source / name / "models.py").write_text(f'OWNER = "standin-{name}.models"\n')
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", where, source)
    return next(where.glob(f"{name}-0.0.1-*.whl"))


def check_standins(python: Path) -> None:
    code = "; ".join(f"import {n}, {n}.models; assert {n}.models.OWNER == 'standin-{n}.models'" for n in STANDINS)
    run(python, "-c", code)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, ROOT, timeout=600)
    return next(out.glob("lector_reader-*.whl"))


def test_the_wheel_installs_beside_llm_and_tools_and_uninstalls_cleanly(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip: list[str | Path] = [python, "-m", "pip", "--disable-pip-version-check", "-q"]
    for name in STANDINS:
        run(*pip, "install", "--no-deps", "--no-index", build_standin(name, tmp_path))
    check_standins(python)

    run(*pip, "install", "--no-deps", "--no-index", wheel)
    top_level = sorted(p.name for p in site.iterdir() if (p / "__init__.py").exists())
    assert "lector" in top_level and not {"agent", "retrieval", "webui"} & set(top_level)
    check_standins(python)
    assert run(python, "-c", "import lector.llm.models as m; print(m.__file__)").strip().startswith(str(site))

    assert "serve" in run(target / "bin" / "lector", "--help")
    page, script, docs, vendored = serve_and_fetch(
        target / "bin" / "lector",
        tmp_path / "data",
        "/",
        "/static/app.js",
        "/docs",
        "/static/vendor/swagger/swagger-ui.css",
    )
    assert "<html" in page.lower() and len(script) > 1000
    assert "swagger-ui" in docs and len(vendored) > 1000, "nested static folders are package data"

    run(*pip, "uninstall", "-y", "lector-reader")
    assert not (site / "lector").exists()
    check_standins(python)


def serve_and_fetch(lector: Path, data_dir: Path, *paths: str) -> list[str]:
    port, token = free_port(), "wheel-test-token-0123456789"
    env = {**os.environ, "PYTHONPATH": "", "LECTOR_DATA": str(data_dir)}
    # A model server that isn't there: the page must still be served, and nothing is loaded at start.
    model = "openai:http://127.0.0.1:9/v1#absent"
    argv = [str(lector), "serve", "--port", str(port), "--token", token, "--data-dir", str(data_dir), "--model", model]
    proc = subprocess.Popen(argv, env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        headers = {"Authorization": f"Bearer {token}"}
        bodies = []
        for path in paths:
            response = httpx.get(base + path, headers=headers, timeout=10)
            assert response.status_code == 200, (path, response.text)
            bodies.append(response.text)
        return bodies
    finally:
        proc.terminate()
        proc.wait(timeout=15)
