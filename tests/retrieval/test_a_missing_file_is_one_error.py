"""The Python API's "file not found" is one error, not the OS error chained under it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lector.retrieval.parsers import DocumentError, parse_file


@pytest.mark.parametrize("make", ["missing", "folder"])
def test_an_unreadable_path_raises_a_document_error_with_no_chained_cause(tmp_path: Path, make: str) -> None:
    path = tmp_path / "manual.pdf"
    if make == "folder":
        path.mkdir()
    with pytest.raises(DocumentError) as caught:
        parse_file(path)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert str(caught.value).endswith("file not found" if make == "missing" else "is a directory")


def test_adding_a_missing_file_prints_one_traceback(tmp_path: Path) -> None:
    script = "from lector import Library; Library().add_file('missing-manual.pdf')"
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.count("Traceback") == 1, run.stderr
    assert "direct cause" not in run.stderr and "During handling" not in run.stderr
    assert run.stderr.rstrip().endswith("DocumentError: missing-manual.pdf: file not found")
