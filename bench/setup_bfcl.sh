#!/usr/bin/env bash
# Install bfcl-eval (pinned) for bench/bfcl.py into bench/.bfcl-lib (git-ignored), apart from the project's
# dependencies: --no-deps, plus only what its loader, tool converter and AST checker import. Idempotent.
#
#   bash bench/setup_bfcl.sh                  # uses .venv/bin/python
#   PYTHON=python3 BFCL_LIB=/some/dir bash bench/setup_bfcl.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="${BFCL_LIB:-$HERE/.bfcl-lib}"
PYTHON="${PYTHON:-$HERE/../.venv/bin/python}"
PINS=("bfcl-eval==2026.3.23" "tree_sitter==0.21.3" "tree-sitter-java==0.21.0" "tree-sitter-javascript==0.21.4"
      "tenacity==9.2.1")
STAMP="$LIB/.lector-bench-installed"
WANT="${PINS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    echo "bfcl-eval ready: $LIB"
    exit 0
fi
"$PYTHON" -m pip install -q --no-deps --upgrade --target "$LIB" "${PINS[@]}"
PYTHONPATH="$HERE/.." "$PYTHON" -c "from bench.bfcl import load_bfcl; load_bfcl(); print('bfcl-eval checker imports')"
echo "$WANT" > "$STAMP"
echo "bfcl-eval ready: $LIB"
