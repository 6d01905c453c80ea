"""Fit and check retrieval.token_estimate against the real Qwen2.5 tokenizer.

    .venv/bin/python -m bench.token_calibration            # check the shipped coefficients
    .venv/bin/python -m bench.token_calibration --fit      # also least-squares fit new ones

Text: English prose (Brown corpus) and reStructuredText (Linux docs) from ../shared/corpora, Python
source from the standard library, Chinese from the zh_CN message catalogues installed with Debian
packages (/usr/share/locale/zh_CN/LC_MESSAGES/*.mo) and GnuPG's Chinese help, and a mix of all.
The tokenizer is the one inside the embedded GGUF model (retrieval.token_estimate.reference_tokenizer).
"""

from __future__ import annotations

import argparse
import gettext
import glob
import lzma
import random
import sys
import sysconfig
from pathlib import Path

import numpy as np

from lector.retrieval.token_estimate import COEFFICIENTS, features, reference_tokenizer

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def english(limit: int) -> str:
    with lzma.open(CORPORA / "brown.txt.xz", "rt", encoding="utf-8") as f:
        return f.read(limit)


def rst(limit: int) -> str:
    with lzma.open(CORPORA / "linux_docs.txt.xz", "rt", encoding="utf-8") as f:
        f.read(3_000_000)
        return f.read(limit)


def python_source(limit: int) -> str:
    parts: list[str] = []
    size = 0
    for path in sorted(glob.glob(str(Path(sysconfig.get_paths()["stdlib"]) / "*.py"))):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        size += len(text)
        if size >= limit:
            break
    return "\n".join(parts)[:limit]


def chinese(limit: int) -> str:
    parts: list[str] = []
    for path in sorted(glob.glob("/usr/share/locale/zh_CN/LC_MESSAGES/*.mo")):
        try:
            with open(path, "rb") as f:
                catalog = gettext.GNUTranslations(f)
        except Exception:
            continue
        for value in catalog._catalog.values():  # type: ignore[attr-defined]
            if isinstance(value, str) and any("\u4e00" <= ch <= "\u9fff" for ch in value):
                parts.append(value)
    help_file = Path("/usr/share/gnupg/help.zh_CN.txt")
    if help_file.exists():
        parts.append(help_file.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)[:limit]


def windows(text: str, size: int, count: int, rng: random.Random) -> list[str]:
    if len(text) <= size:
        return [text]
    return [text[s : s + size] for s in (rng.randrange(0, len(text) - size) for _ in range(count))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tokenizer = reference_tokenizer()
    if tokenizer is None:
        print("no Qwen2.5 tokenizer available offline (install an embedded model)", file=sys.stderr)
        return 1
    rng = random.Random(args.seed)
    sources = {
        "english": english(2_000_000),
        "rst": rst(2_000_000),
        "python": python_source(2_000_000),
        "chinese": chinese(600_000),
    }
    # a mixed sample: alternate paragraphs from every source
    mixed = []
    for i in range(400):
        name = list(sources)[i % 4]
        text = sources[name]
        start = rng.randrange(0, max(1, len(text) - 600))
        mixed.append(text[start : start + 600])
    sources["mixed"] = "\n\n".join(mixed)

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    # chunk-sized windows: ~2000 chars of English is ~450 tokens; Chinese ~700 chars
    samples: dict[str, list[tuple[np.ndarray, int]]] = {}
    for name, text in sources.items():
        size = 700 if name == "chinese" else 2000
        samples[name] = [(features(w), count(w)) for w in windows(text, size, 300, rng)]
    coefficients = COEFFICIENTS
    if args.fit:
        x = np.array([f for name in samples for f, _ in samples[name]], dtype=np.float64)
        y = np.array([n for name in samples for _, n in samples[name]], dtype=np.float64)
        # relative error matters: weight each window by 1/tokens
        w = 1.0 / np.maximum(y, 1)
        fit, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
        coefficients = np.clip(fit, 0, None)
        print("fitted COEFFICIENTS =", np.array2string(coefficients, precision=4, separator=", "))
    print(f"{'text':10} {'windows':>7} {'tokens':>9} {'estimate':>9} {'total err':>9} {'|err| p50':>9} {'p90':>6}")
    worst = 0.0
    for name, rows in samples.items():
        real = np.array([n for _, n in rows], dtype=np.float64)
        est = np.array([float(coefficients @ f) for f, _ in rows])
        rel = np.abs(est - real) / np.maximum(real, 1)
        total_err = (est.sum() - real.sum()) / real.sum()
        worst = max(worst, abs(total_err))
        print(
            f"{name:10} {len(rows):7d} {int(real.sum()):9d} {int(est.sum()):9d} {total_err:+9.2%} "
            f"{np.median(rel):9.2%} {np.percentile(rel, 90):6.2%}"
        )
    print(f"worst total error {worst:.2%} (target <= 5%)")
    return 0 if worst <= 0.05 else 2


if __name__ == "__main__":
    sys.exit(main())
