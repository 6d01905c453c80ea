"""Level 2 with the scripted model: quote verification, bounded reading, early stop, re-query, usage."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.context import ReadingContext
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.level2 import READ_SCHEMA, Level2Config, Passages, Reading, level2, verify_quote
from lector.retrieval.library import Library

WORDS = ["weather", "barley", "orchard", "harvest", "river", "market", "mill", "fence", "cattle", "road"]


def paragraphs(start: int, count: int) -> list[str]:
    return [
        f"Paragraph {i} is about the {WORDS[i % 10]} and the {WORDS[(i * 3) % 10]} of the valley."
        + (" A lighthouse stood on the cape." if i % 23 == 0 else "")
        for i in range(start, start + count)
    ]


def build(tmp_path, inserts: dict[int, str], total: int = 2000) -> tuple[Library, str]:
    paras = paragraphs(0, total)
    for at, sentence in sorted(inserts.items(), reverse=True):
        paras.insert(at, sentence)
    library = Library(cache_dir=tmp_path)
    return library, library.add_text("\n\n".join(paras), "valley.txt")


def reading(library: Library, backend: ScriptedBackend) -> ReadingContext:
    """The whole library, read with a cold keyword cache."""
    return ReadingContext(library, backend, keyword_cache=KeywordCache())


def passage(messages: list[Message]) -> str:
    """The text of the passages a read call shows, one paragraph each."""
    body = messages[-1].content.rsplit("\n\nQuestion:", 1)[0]
    return "\n\n".join(re.split(r"^Passage \([^)]*\):\n", body, flags=re.M)[1:])


def model(read: Callable[[str], dict[str, object]], keywords: list[str]) -> Callable[..., str]:
    """A scripted model that writes keywords, reads chunks with `read`, and answers citing evidence with a name."""

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        schema = options.json_schema or {}
        if "keywords_en" in schema.get("properties", {}):
            return json.dumps({"keywords_en": keywords})
        if schema == READ_SCHEMA:
            return json.dumps(read(passage(messages)))
        blocks = re.split(r"^\[(\d+)\] \(", messages[-1].content, flags=re.M)
        for n, text in zip(blocks[1::2], blocks[2::2], strict=True):
            if "green" in text:
                return f"Green [{n}]."
        return "NOT FOUND"

    return reply


def shown_passages(request: dict[str, object]) -> int:
    messages = request["messages"]
    assert isinstance(messages, list)
    return str(messages[-1].content).count("\n\nPassage (")


def first_sentence_with(word: str) -> Callable[[str], dict[str, object]]:
    def read(text: str) -> dict[str, object]:
        found = [s for s in re.split(r"(?<=\.)\s+", text) if word in s]
        return {"relevant": True, "quotes": found[:1] or ["The valley was quiet all year long."]}

    return read


def test_verify_quote() -> None:
    text = "The keeper, Orvald Brenn,\n painted the tower green. It was 1887."
    [(start, end)] = verify_quote("the keeper, orvald brenn, painted the tower GREEN.", text)
    assert text[start:end] == "The keeper, Orvald Brenn,\n painted the tower green."
    assert verify_quote("The keeper Orvald Brenn painted the tower green", text) == [(start, end)]
    assert verify_quote("The keeper ... the tower", text) == [(start, end)]  # short parts, each once: its sentence
    assert [text[s:e] for s, e in verify_quote("painted the tower green ... 1887", text)] == [
        "painted the tower green."
    ]
    assert len(verify_quote("The keeper, Orvald Brenn, ... painted the tower green", text)) == 2
    assert verify_quote("Orvald Brenn painted the lighthouse tower green.", text) == [(start, end)]  # nearly
    assert verify_quote("Orvald Brenn painted the barn red.", text) == []  # too little of any sentence
    assert verify_quote("It was", text) == []  # too short to mean anything
    assert verify_quote("“The keeper, Orvald Brenn, painted”", text.replace(",", ",")) != []


async def test_fabricated_quotes_are_dropped(tmp_path) -> None:
    library, _ = build(tmp_path, {1000: "The lighthouse keeper Orvald Brenn painted the tower green in 1887."})

    def read(text: str) -> dict[str, object]:
        real = [s for s in re.split(r"(?<=\.)\s+", text) if "Orvald" in s]
        return {"relevant": True, "quotes": [*real, "The lighthouse was painted bright purple by the mayor."]}

    backend = ScriptedBackend(default=model(read, ["lighthouse", "painted"]))
    answer = await level2(
        reading(library, backend), "What colour was the lighthouse painted?", Level2Config(max_chunks=6)
    )
    assert answer.level == 2 and "Green" in answer.answer
    assert answer.details["verified_quotes"] == 1
    assert answer.details["offered_quotes"] >= 2 * answer.details["verified_quotes"]
    assert [c.text for c in answer.citations] == ["The lighthouse keeper Orvald Brenn painted the tower green in 1887."]
    for request in backend.requests:
        assert "purple" not in request["messages"][-1].content or request["options"].json_schema == READ_SCHEMA


async def test_reading_is_bounded_by_the_budget(tmp_path) -> None:
    library, _ = build(tmp_path, {})
    backend = ScriptedBackend(default=model(lambda t: {"relevant": True, "quotes": []}, ["lighthouse"]))
    config = Level2Config(k=20, max_chunks=3, requery_k=4)
    answer = await level2(reading(library, backend), "Where is the lighthouse?", config)
    reads = [r for r in backend.requests if r["options"].json_schema == READ_SCHEMA]
    assert len(reads) == 1 and shown_passages(reads[0]) == 3 == len(answer.details["chunks_read"])
    assert answer.usage.llm_calls == len(backend.requests)
    assert answer.usage.prompt_tokens == sum(
        sum(backend.count_tokens(m.content) for m in r["messages"]) for r in backend.requests
    )

    whole_chunks = Level2Config(k=20, max_chunks=50, max_read_tokens=1500, passage_sentences=None)
    backend = ScriptedBackend(default=model(lambda t: {"relevant": True, "quotes": []}, ["lighthouse"]))
    answer = await level2(reading(library, backend), "Where is the lighthouse?", whole_chunks)
    assert 1 <= len(answer.details["chunks_read"]) <= 3 and answer.details["read_tokens"] <= 1500

    focused = whole_chunks.model_copy(update={"passage_sentences": 2})
    backend = ScriptedBackend(default=model(lambda t: {"relevant": True, "quotes": []}, ["lighthouse"]))
    answer = await level2(reading(library, backend), "Where is the lighthouse?", focused)
    assert len(answer.details["chunks_read"]) > 3 and answer.details["read_tokens"] <= 1500


async def test_each_read_shows_the_sentences_around_the_terms_after_the_shared_question(tmp_path) -> None:
    library, doc_id = build(tmp_path, {1000: "The lighthouse keeper Orvald Brenn painted the tower green in 1887."})
    backend = ScriptedBackend(default=model(first_sentence_with("Orvald"), ["lighthouse", "keeper"]))
    question = "Who kept the lighthouse?"
    config = Level2Config(max_chunks=4, requery_k=0, passages_per_read=2)
    answer = await level2(reading(library, backend), question, config)
    reads = [r["messages"] for r in backend.requests if r["options"].json_schema == READ_SCHEMA]
    assert len(reads) == 2
    prefix = reads[0][0].content + reads[0][1].content.split("Passage (", 1)[0]
    assert all(m[0].content + m[1].content.split("Passage (", 1)[0] == prefix for m in reads)
    assert prefix.endswith(f"Question: {question}\n\n"), "the question comes before the passage"
    assert all(m[1].content.endswith(f"Question: {question}") for m in reads), "and again after it"
    chunk_texts = {c.chunk_id: c.text for c in library.chunks(doc_id)}
    shown = [passage(m) for m in reads]
    assert all(len(p) < len(max(chunk_texts.values(), key=len)) / 2 for p in shown)
    assert any("Orvald Brenn painted the tower green" in p for p in shown)
    assert [c.text for c in answer.citations] == ["The lighthouse keeper Orvald Brenn painted the tower green in 1887."]


async def test_reading_stops_early_once_enough_verified_quotes(tmp_path) -> None:
    library, _ = build(tmp_path, {})
    backend = ScriptedBackend(default=model(first_sentence_with("lighthouse"), ["lighthouse"]), parallel_slots=2)
    config = Level2Config(k=20, max_chunks=12, enough_quotes=2, requery_k=1)
    answer = await level2(reading(library, backend), "Where is the lighthouse?", config)
    reads = [r for r in backend.requests if r["options"].json_schema == READ_SCHEMA]
    assert answer.details["strong_quotes"] >= 2
    assert len(reads) <= 3  # one wave of two, then at most one chunk from the re-query


async def test_quotes_requery_bm25_and_find_evidence_the_question_missed(tmp_path) -> None:
    library, _ = build(
        tmp_path,
        {
            300: "The lighthouse keeper of the cape was Orvald Brenn.",
            1700: "Orvald Brenn painted everything he owned green.",
        },
    )

    def read(text: str) -> dict[str, object]:
        found = [s for s in re.split(r"(?<=\.)\s+", text) if "Orvald" in s]
        return {"relevant": bool(found), "quotes": found}

    backend = ScriptedBackend(default=model(read, ["lighthouse", "keeper"]))
    answer = await level2(
        reading(library, backend),
        "What colour did the keeper of the lighthouse like?",
        Level2Config(k=3, max_chunks=8, enough_quotes=5),
    )
    texts = [c.text for c in answer.citations]
    assert "Orvald Brenn painted everything he owned green." in texts
    assert answer.details["requery"]
    first = library.search("colour keeper lighthouse", k=3)
    assert all("painted everything" not in h.chunk.text for h in first)  # only the re-query found it


class Tracking(ScriptedBackend):
    """Counts how many requests are in flight at once."""

    live = 0
    peak = 0

    async def astream(self, messages, tools=None, options=None):
        self.live += 1
        self.peak = max(self.peak, self.live)
        try:
            async for delta in super().astream(messages, tools, options):
                yield delta
        finally:
            self.live -= 1


async def test_chunks_are_read_in_parallel_up_to_the_backend_slots(tmp_path) -> None:
    library, _ = build(tmp_path, {})
    backend = Tracking(
        default=model(lambda t: {"relevant": False, "quotes": []}, ["lighthouse"]), parallel_slots=3, delay=0.01
    )
    config = Level2Config(k=12, max_chunks=9, passages_per_read=2, parallel_reads=4)
    answer = await level2(reading(library, backend), "Where is the lighthouse?", config)
    assert len(answer.details["chunks_read"]) == 9
    assert backend.peak == 3, "at most the backend's slots"
    reads = [r for r in backend.requests if r["options"].json_schema == READ_SCHEMA]
    assert [shown_passages(r) for r in reads] == [2, 2, 2, 2, 1]


async def test_one_read_call_at_a_time_by_default(tmp_path) -> None:
    library, _ = build(tmp_path, {})
    backend = Tracking(
        default=model(lambda t: {"relevant": False, "quotes": []}, ["lighthouse"]), parallel_slots=4, delay=0.01
    )
    answer = await level2(reading(library, backend), "Where is the lighthouse?", Level2Config(k=12, max_chunks=9))
    reads = [r for r in backend.requests if r["options"].json_schema == READ_SCHEMA]
    assert len(answer.details["chunks_read"]) == 9 and len(reads) == 3
    assert backend.peak == 1


def test_a_reply_cut_by_the_token_cap_keeps_its_quotes() -> None:
    from lector.retrieval.level2 import _parse_reading

    cut = '{"relevant": true, "quotes": ["The keeper painted the tower green.", "He lived there from 18'
    relevant, quotes = _parse_reading(cut)
    assert relevant and quotes == ["The keeper painted the tower green.", "He lived there from 18"]
    assert _parse_reading('{"relevant": false, "quotes": []}') == (False, [])
    assert _parse_reading("nonsense") == (False, [])


async def test_progress_says_which_passages_of_how_many_are_being_read(tmp_path) -> None:
    library, _ = build(tmp_path, {})
    backend = ScriptedBackend(
        default=model(lambda t: {"relevant": False, "quotes": []}, ["lighthouse"]), parallel_slots=2
    )
    told: list[Reading | Passages] = []
    config = Level2Config(k=5, max_chunks=7, passages_per_read=1, parallel_reads=2)
    answer = await level2(reading(library, backend), "Where is the lighthouse?", config, progress=told.append)
    waves = [t for t in told if isinstance(t, Passages)]
    reads = [t for t in told if isinstance(t, Reading)]
    read_count = len(answer.details["chunks_read"])
    assert len(reads) == read_count > 2
    assert [(w.first, w.last) for w in waves] == [(i, min(i + 1, read_count)) for i in range(1, read_count + 1, 2)]
    assert all(w.total == read_count for w in waves), "the passages chosen for reading, exactly"
    assert [(r.index, r.total) for r in reads] == [(i, read_count) for i in range(1, read_count + 1)]
    assert told.index(waves[1]) == 3, "a wave is announced before it is read, after the one before it"
    assert [c.chunk_id for w in waves for c in w.chunks] == [r.chunk.chunk_id for r in reads]


async def test_a_requery_adds_its_passages_to_the_total(tmp_path) -> None:
    library, _ = build(
        tmp_path,
        {300: "The lighthouse keeper of the cape was Orvald Brenn.", 1700: "Orvald Brenn painted everything green."},
    )

    def read(text: str) -> dict[str, object]:
        found = [s for s in re.split(r"(?<=\.)\s+", text) if "Orvald" in s]
        return {"relevant": bool(found), "quotes": found}

    backend = ScriptedBackend(default=model(read, ["lighthouse", "keeper"]))
    told: list[Reading | Passages] = []
    config = Level2Config(k=3, max_chunks=8, enough_quotes=5)
    await level2(reading(library, backend), "What colour did the keeper like?", config, progress=told.append)
    waves = [t for t in told if isinstance(t, Passages)]
    assert waves[0].total < waves[-1].total <= 8 and sorted(w.total for w in waves) == [w.total for w in waves]
    assert [w.first for w in waves] == [1] + [w.last + 1 for w in waves[:-1]], "numbered on across the re-query"
