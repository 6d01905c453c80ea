"""Run the Lector app with a SCRIPTED model (not a language model) for crash and load tests.

usage: scripted_server.py DATA_DIR PORT [DELAY_SECONDS]
The model answers every message with a long reply streamed slowly, so a test can kill the server mid-answer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lector.llm.scripted import ScriptedBackend  # noqa: E402
from lector.webui.app import create_app  # noqa: E402
from lector.webui.config import ServerConfig  # noqa: E402

TOKEN = "test-token-0123456789"


def main() -> None:
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.05
    backend = ScriptedBackend(default="word " * 400, delay=delay, chunk_size=5)
    config = ServerConfig(data_dir=data_dir, port=port, token=TOKEN, tools=["calculator"])
    uvicorn.run(create_app(config, backend=backend), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
