"""The embedded engine's thread choice, as a table (no model)."""

from __future__ import annotations

import pytest

from lector.llm import threads
from lector.llm.threads import ThreadChoice, choose_threads, parse_threads, resolve_threads


@pytest.mark.parametrize(
    "requested, env, cores, busy, generation, prompts",
    [
        (None, None, 2, 0.0, 1, 2),  # idle: prompts on every core, generation leaves one free
        (None, None, 2, 0.3, 1, 2),  # a little background noise takes no core
        (None, None, 2, 0.6, 1, 2),  # a busy core is left to generation; prompts still read on it
        (None, None, 2, 1.0, 1, 2),
        (None, None, 2, 2.0, 1, 2),  # never fewer than one thread
        (None, None, 2, 5.0, 1, 2),
        (None, None, 8, 0.0, 7, 8),
        (None, None, 8, 2.4, 5, 8),
        (None, None, 1, 0.0, 1, 1),
        (3, None, 2, 2.0, 3, 3),  # --threads wins over the load, for both
        (None, "4", 2, 2.0, 4, 4),  # so does LECTOR_THREADS
        (1, "4", 2, 0.0, 1, 1),  # and --threads over LECTOR_THREADS
    ],
)
def test_thread_counts(
    requested: int | None, env: str | None, cores: int, busy: float, generation: int, prompts: int
) -> None:
    choice = choose_threads(requested, env, cores, busy)
    assert (choice.threads, choice.batch_threads) == (generation, prompts)
    assert choice.poll == 0  # waiting threads sleep, never spin on a core another process needs


@pytest.mark.parametrize(
    "requested, env, reason",
    [(2, None, "--threads"), (None, "2", "LECTOR_THREADS"), (None, None, "auto: 2 core(s), 1.2 busy")],
)
def test_the_reason_is_shown(requested: int | None, env: str | None, reason: str) -> None:
    choice = choose_threads(requested, env, 2, 1.2)
    assert reason in choice.reason
    assert reason in choice.describe() and f"{choice.threads} thread(s)" in choice.describe()


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_bad_counts_are_refused_with_where_they_came_from(text: str) -> None:
    with pytest.raises(ValueError, match="LECTOR_THREADS"):
        parse_threads(text)


def test_environment_is_read_and_the_load_is_sampled_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    sampled: list[float] = []

    def fake_busy(sample_s: float = 0.0) -> float:
        sampled.append(sample_s)
        return 1.0

    monkeypatch.setattr(threads, "busy_cores", fake_busy)
    monkeypatch.setattr(threads, "physical_cores", lambda: 2)
    monkeypatch.setenv("LECTOR_THREADS", "2")
    assert resolve_threads() == ThreadChoice(2, 2, 0, "set by LECTOR_THREADS")
    assert resolve_threads(1).threads == 1
    assert sampled == []
    monkeypatch.delenv("LECTOR_THREADS")
    assert (resolve_threads().threads, resolve_threads().batch_threads) == (1, 2)
    assert len(sampled) == 2


def test_machine_readings_are_plausible() -> None:
    assert threads.physical_cores() >= 1
    assert 0.0 <= threads.busy_cores(0.05) <= 64
