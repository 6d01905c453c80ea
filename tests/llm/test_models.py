"""Model assembly: the real 0.5B join and verification, and failure handling with small fake parts."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from lector.llm.errors import ModelNotFoundError
from lector.llm.models import (
    CATALOGUE,
    ModelSpec,
    ensure_model,
    get_spec,
    list_models,
    part_paths,
    verify_model,
)


def fake_model(tmp_path: Path, chunks: list[bytes], *, sha256: str | None = None) -> tuple[ModelSpec, list[Path]]:
    parts = []
    for i, chunk in enumerate(chunks, 1):
        part = tmp_path / "parts" / f"part{i:02d}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(chunk)
        parts.append(part)
    whole = b"".join(chunks)
    spec = ModelSpec(
        name="fake-model",
        packages=("fake-part1",),
        version="0.0.1",
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
    )
    return spec, parts


def test_real_small_model_joins_and_verifies(tmp_path: Path) -> None:
    spec = get_spec("qwen2.5-coder-0.5b")
    parts = part_paths(spec)
    assert [p.name for p in parts] == [f"part0{i}.bin" for i in range(1, 7)]

    path = ensure_model(spec.name, progress=False, directory=tmp_path)
    assert path.stat().st_size == spec.size == 491_400_064
    assert ensure_model(spec.name, progress=False, directory=tmp_path) == path  # reused via the stamp
    status = {s.name: s for s in list_models(tmp_path)}[spec.name]
    assert status.parts_installed and status.assembled and status.verified
    assert verify_model(spec.name, progress=False, directory=tmp_path) == path  # full rehash
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_join_verify_and_reuse(tmp_path: Path) -> None:
    spec, parts = fake_model(tmp_path, [b"abc" * 1000, b"def" * 500, b"g"])
    cache = tmp_path / "cache"
    path = ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec)
    assert path.read_bytes() == b"abc" * 1000 + b"def" * 500 + b"g"
    # once verified, the parts are not read again
    for p in parts:
        p.unlink()
    assert ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec) == path


def test_hash_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    spec, parts = fake_model(tmp_path, [b"x" * 100, b"y" * 100], sha256="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError, match="failed verification"):
        ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec)
    assert not [p for p in cache.iterdir() if not p.name.endswith(".lock")]


def test_corrupted_cache_is_detected_and_deleted(tmp_path: Path) -> None:
    spec, parts = fake_model(tmp_path, [b"0123456789" * 100])
    cache = tmp_path / "cache"
    path = ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec)
    data = bytearray(path.read_bytes())
    data[5] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches for it
    with pytest.raises(ModelNotFoundError, match="corrupt"):
        verify_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec)
    assert not path.exists()
    # the next load joins it again from the parts
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))
    assert ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec).read_bytes() == (
        b"0123456789" * 100
    )


def test_missing_part_package_names_the_fix() -> None:
    spec = ModelSpec(name="ghost", packages=("lector-no-such-part1",), version="1.0", size=1, sha256="0" * 64)
    with pytest.raises(ModelNotFoundError, match=r"pip install 'lector-no-such-part1==1.0'"):
        part_paths(spec)


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ModelNotFoundError, match="qwen2.5-coder-0.5b"):
        get_spec("gpt-17")
    assert set(CATALOGUE) == {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"}


def test_concurrent_assembly_is_safe(tmp_path: Path) -> None:
    spec, parts = fake_model(tmp_path, [os.urandom(1 << 20) for _ in range(4)])
    cache = tmp_path / "cache"
    results: list[Path] = []
    errors: list[BaseException] = []

    def assemble() -> None:
        try:
            results.append(ensure_model(spec.name, progress=False, directory=cache, parts=parts, spec=spec))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=assemble) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(results)) == 1
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == spec.sha256
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


def test_models_command_lists_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import argparse

    from lector.cli import models as cmd_models

    monkeypatch.setenv("LECTOR_CACHE", str(tmp_path))
    assert cmd_models.run(argparse.Namespace(verify=None)) == 0
    out = capsys.readouterr().out
    assert "* qwen2.5-coder-1.5b" in out and "qwen2.5-coder-0.5b" in out and "parts installed" in out
    assert cmd_models.run(argparse.Namespace(verify="no-such-model")) == 1
    assert "FAILED" in capsys.readouterr().err
