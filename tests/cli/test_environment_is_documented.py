"""Every environment variable Lector reads is in the README's table, so a person can find each one."""

from __future__ import annotations

import os
import re
from pathlib import Path

import lector

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = {"LECTOR_MPL_CACHE"}
"""Set by the code interpreter's sandbox for the Python it starts, not by a person."""


def variables_in_the_code() -> set[str]:
    names: set[str] = set()
    package = Path(lector.__file__).parent
    for folder, _, files in os.walk(package, followlinks=True):  # the subpackages are links to the top folders
        for name in files:
            if name.endswith(".py"):
                names |= set(re.findall(r"\bLECTOR_[A-Z0-9_]+\b", (Path(folder) / name).read_text(encoding="utf-8")))
    return names


def test_every_environment_variable_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(LECTOR_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    used = variables_in_the_code()
    assert {"LECTOR_MODEL", "LECTOR_TOKEN", "LECTOR_OPENAI_API_KEY"} <= used, "the scan reads the whole package"
    assert sorted(used - INTERNAL - table) == []
