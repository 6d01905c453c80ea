"""The work folder's files, handled as hostile: the sandbox writes there and may plant links or race us.

Created files are found by walking the folder with directory descriptors (never following links) and
copied out, with O_NOFOLLOW at every step, to a folder the sandbox cannot reach. Attachments are copied
in the same careful way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from lector.tools.code import sandbox

EXPORT_BYTES = 128 << 20
"""Bytes of created files copied out per call for the UI."""
MAX_EXPORTED_FILES = 20


@dataclass
class WorkdirScan:
    files: dict[str, tuple[int, int, int]]
    """Regular files: relative path -> (mtime_ns, size, inode)."""
    used_bytes: int
    entries: int

    def over(self, max_bytes: int, max_entries: int) -> bool:
        return self.used_bytes > max_bytes or self.entries > max_entries

    def changed_since(self, before: WorkdirScan) -> list[str]:
        """Files created or changed since `before`, sorted."""
        return [rel for rel, sig in sorted(self.files.items()) if before.files.get(rel) != sig]


def scan_workdir(workdir: Path, max_entries: int) -> WorkdirScan:
    """Walk the work folder by directory descriptors, never following a link the sandbox planted."""
    scan = WorkdirScan({}, 0, 0)
    for dirpath, dirnames, filenames, dirfd in os.fwalk(workdir, follow_symlinks=False):
        for name in dirnames + filenames:
            scan.entries += 1
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            scan.used_bytes += st.st_blocks * 512
            if stat.S_ISREG(st.st_mode):
                rel = os.path.relpath(os.path.join(dirpath, name), workdir)
                scan.files[rel] = (st.st_mtime_ns, st.st_size, st.st_ino)
        if scan.entries > max_entries:
            break
    return scan


def _open_parent(workdir: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the folder holding workdir/parts, reached without following any link."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY
    fd = os.open(workdir, flags)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _safe_parts(rel: str) -> tuple[str, ...] | None:
    parts = Path(rel).parts
    return parts if parts and ".." not in parts else None


def _unlink_inside(workdir: Path, rel: str) -> None:
    parts = _safe_parts(rel)
    if parts is None:
        return
    fd = _open_parent(workdir, parts)
    try:
        os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def export_file(workdir: Path, rel: str, dest: Path, max_bytes: int) -> Path | None:
    """Copy workdir/rel to dest, opening every component with O_NOFOLLOW (the sandbox may race us)."""
    parts = _safe_parts(rel)
    if parts is None:
        return None
    fd = _open_parent(workdir, parts)
    try:
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    with os.fdopen(file_fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            return None
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with dest.open("wb") as out:
            remaining = max_bytes
            while remaining > 0:
                chunk = src.read(min(1 << 20, remaining))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
    return dest


def export_created(workdir: Path, created: list[tuple[str, int]], dest: Path) -> list[Path]:
    """Host copies under `dest` of the created files (path, size), within the per-call budget."""
    copies = []
    budget = EXPORT_BYTES
    for rel, size in created[:MAX_EXPORTED_FILES]:
        if size > budget:
            continue
        with contextlib.suppress(OSError):
            copy = export_file(workdir, rel, dest / rel, size)
            if copy is not None:
                copies.append(copy)
                budget -= size
    return copies


def delete_inside(workdir: Path, rels: list[str]) -> None:
    for rel in rels:
        with contextlib.suppress(OSError):
            _unlink_inside(workdir, rel)


def copy_into(workdir: Path, source: Path, copied: dict[str, tuple[int, int]] | None = None) -> Path | None:
    """Copy an attachment into the work folder without following anything the sandbox planted there.

    `copied` remembers what was copied already: an unchanged attachment is not copied again, so the
    code's own edits of its copy persist.
    """
    name = source.name
    if not name or name.startswith(".") or not source.is_file():
        return None
    target = workdir / name
    src_st = source.stat()
    signature = (src_st.st_mtime_ns, src_st.st_size)
    with contextlib.suppress(FileNotFoundError):
        st = target.lstat()
        if stat.S_ISREG(st.st_mode) and copied is not None and copied.get(str(source)) == signature:
            return target
        if stat.S_ISDIR(st.st_mode):
            return None
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as dst, source.open("rb") as src:
        shutil.copyfileobj(src, dst)
    if os.geteuid() == 0:
        os.chown(target, sandbox.SANDBOX_UID, sandbox.SANDBOX_GID)
    if copied is not None:
        copied[str(source)] = signature
    return target
