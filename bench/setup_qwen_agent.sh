#!/usr/bin/env bash
# Install Qwen-Agent (pinned) into its own venv for bench/vs_qwen_agent.py. Idempotent: a second run
# with the same pins does nothing.
#
#   bash bench/setup_qwen_agent.sh            # creates bench/.qwen-agent-venv
#   QWEN_AGENT_VENV=/some/dir bash bench/setup_qwen_agent.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${QWEN_AGENT_VENV:-$HERE/.qwen-agent-venv}"
PYTHON="${PYTHON:-python3}"
# qwen-agent's [rag] extra does not pull in soundfile and tqdm, which `import qwen_agent` needs.
PINS=("qwen-agent[rag]==0.0.34" "soundfile" "tqdm")
STAMP="$VENV/.lector-bench-installed"
WANT="${PINS[*]}"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/python" -c "import qwen_agent" 2>/dev/null; then
    echo "Qwen-Agent venv ready: $VENV"
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${PINS[@]}"
"$VENV/bin/python" -c "import qwen_agent, qwen_agent.agents, qwen_agent.tools.doc_parser; print('qwen-agent', qwen_agent.__version__)"
echo "$WANT" > "$STAMP"
echo "Qwen-Agent venv ready: $VENV"
