"""Zip packages (docx, pptx, xlsx) read within a budget: sizes and ratios checked before, output counted while.

Before a part is read, its declared size must fit what is left of the budget and its declared compression
ratio must be plausible; while it is read, every expanded byte is charged to the meter and the ratio is
checked again, so a forged size in the central directory does not get around the limits.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator

from lector.retrieval.parsers.base import DocumentError
from lector.retrieval.parsers.budget import Meter, expands_reason

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
BLOCK = 1 << 16
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError, ValueError)


class Package:
    """The parts of one zip package, each read as a stream of blocks charged to the meter."""

    def __init__(self, data: bytes, meter: Meter, kind: str) -> None:
        self.meter = meter
        self.kind = kind
        if data.startswith(OLE_MAGIC):
            raise meter.refuse(f"encrypted (password-protected) or legacy binary {kind} file")
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise meter.refuse(f"corrupt {kind} file (not a valid zip container)") from exc
        self.names = set(self._zip.namelist())

    def corrupt(self, exc: Exception) -> DocumentError:
        return self.meter.refuse(f"corrupt {self.kind} file: {type(exc).__name__}: {exc}")

    def blocks(self, name: str) -> Iterator[bytes]:
        """The part's bytes in blocks; DocumentError when it is corrupt or expands past the budget."""
        info = self._zip.getinfo(name)
        self._check_declared(info)
        produced = 0
        try:
            with self._zip.open(info) as member:
                while block := member.read(BLOCK):
                    produced += len(block)
                    self.meter.add_expanded(len(block))
                    self._check_ratio(name, produced, info.compress_size)
                    yield block
        except _READ_ERRORS as exc:
            raise self.corrupt(exc) from exc

    def read(self, name: str) -> bytes:
        return b"".join(self.blocks(name))

    def _check_declared(self, info: zipfile.ZipInfo) -> None:
        if info.file_size > self.meter.expanded_left():
            raise self.meter.refuse(f"{info.filename} {expands_reason(self.meter.budget.max_expanded_bytes)}")
        self._check_ratio(info.filename, info.file_size, info.compress_size)

    def _check_ratio(self, name: str, size: int, compressed: int) -> None:
        budget = self.meter.budget
        if size > budget.ratio_floor_bytes and size > budget.max_ratio * max(compressed, 1):
            raise self.meter.refuse(
                f"{name} expands more than {budget.max_ratio:g} times its compressed size (a decompression bomb)"
            )

    def close(self) -> None:
        self._zip.close()
