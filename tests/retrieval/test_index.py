"""BM25 tokenization, ranking agreement with rank-bm25, persistence and memory-mapped loading."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from lector.retrieval.bm25_terms import tokenize
from lector.retrieval.index import BM25Index, idf_value, top_k

# --- tokenization -------------------------------------------------------------------------------------


def test_english_lowercase_stopwords_stemming() -> None:
    assert tokenize("The Runners were RUNNING quickly through the forests") == [
        "runner", "run", "quick", "forest",
    ]  # fmt: skip


def test_identifiers_numbers_and_versions_are_kept() -> None:
    terms = tokenize("Enable CONFIG_SMP in v2.3, see RFC 9110 and 3.14159; call foo_bar()")
    for expected in ("config_smp", "config", "smp", "v2.3", "rfc", "9110", "3.14159", "foo_bar", "foo", "bar"):
        assert expected in terms
    assert tokenize("end.") == ["end"]


def test_chinese_with_jieba_search_mode_and_mixed_text() -> None:
    terms = tokenize("我在北京大学学习Python编程，中华人民共和国的首都是北京。")
    for expected in ("北京", "北京大学", "大学", "学习", "python", "编程", "中华人民共和国", "首都"):
        assert expected in terms
    assert "的" not in terms and "在" not in terms
    assert tokenize("北京") == ["北京"]


def test_same_function_for_queries_and_documents() -> None:
    index = BM25Index().build(["Kernel configuration: CONFIG_SMP enables multiprocessing.", "Cooking pasta."])
    assert index.search("config_smp", 2)[0][0] == 0
    assert index.search("smp", 2)[0][0] == 0
    assert index.search("enabling", 2)[0][0] == 0, "stems match across word forms"
    assert index.search("the of and", 2) == [], "stop words alone match nothing"


# --- agreement with rank-bm25 -------------------------------------------------------------------------

WORDS = [f"w{i}" for i in range(400)]


def _corpus(seed: int, n: int = 300) -> list[list[str]]:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(WORDS))]  # Zipf-like, as in real text
    return [rng.choices(WORDS, weights, k=rng.randint(20, 120)) for _ in range(n)]


def _okapi(corpus: list[list[str]], k1: float, b: float):  # noqa: ANN202
    rank_bm25 = pytest.importorskip("rank_bm25")
    return rank_bm25.BM25Okapi(corpus, k1=k1, b=b, epsilon=0.25)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_robertson_scores_equal_rank_bm25_okapi(seed: int) -> None:
    corpus = _corpus(seed)
    reference = _okapi(corpus, 1.5, 0.75)
    index = BM25Index(k1=1.5, b=0.75, method="robertson").build_from_tokens(corpus)
    n = len(corpus)
    df = {w: sum(w in set(doc) for doc in corpus) for w in WORDS}
    rare = [w for w in WORDS if 0 < df[w] < n / 2]  # where both formulas are the same idf
    rng = random.Random(seed + 100)
    for _ in range(30):
        query = rng.sample(rare, rng.randint(1, 4))
        expected = np.asarray(reference.get_scores(query))
        got = index.scores(query) * (1.5 + 1)  # bm25s leaves out the constant factor (k1 + 1)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        ref_top = [int(i) for i in np.argsort(-expected, kind="stable")[:10] if expected[i] > 0]
        assert [i for i, _ in index.search(query, 10)] == ref_top


def test_lucene_default_ranks_like_rank_bm25() -> None:
    """The default idf ln(1 + (N-df+.5)/(df+.5)) differs from Okapi's but ranks nearly the same."""
    corpus = _corpus(5)
    reference = _okapi(corpus, 1.5, 0.75)
    index = BM25Index().build_from_tokens(corpus)
    rng = random.Random(9)
    overlaps = []
    for _ in range(40):
        query = rng.sample(WORDS[20:200], 3)
        expected = np.asarray(reference.get_scores(query))
        ref_top = set(np.argsort(-expected)[:10].tolist())
        ours = {i for i, _ in index.search(query, 10)}
        overlaps.append(len(ref_top & ours) / 10)
    assert np.mean(overlaps) >= 0.9


def test_frequent_terms_still_count_with_the_default() -> None:
    """Okapi gives a term found in most chunks a weight <= 0; the default keeps it searchable."""
    texts = ["solar panel output", "solar inverter fault", "wind turbine"]
    assert BM25Index().build(texts).search("solar", 3)[0][1] > 0
    robertson = BM25Index(method="robertson").build(["solar panel", "solar inverter"])
    assert robertson.search("solar", 3) == []
    assert idf_value("lucene", np.array([2]), 2)[0] > 0


# --- search and persistence ---------------------------------------------------------------------------


def test_top_k_order_ties_and_filtering() -> None:
    scores = np.array([0.0, 2.0, 1.0, 2.0, -1.0, 0.5], dtype=np.float32)
    assert top_k(scores, 3) == [(1, 2.0), (3, 2.0), (2, 1.0)]
    assert top_k(scores, 10) == [(1, 2.0), (3, 2.0), (2, 1.0), (5, 0.5)]
    assert top_k(scores, 0) == [] and top_k(np.zeros(0), 3) == []


def test_empty_index_and_unknown_terms() -> None:
    assert BM25Index().build([]).search("anything") == []
    assert BM25Index().build(["", "   "]).search("anything") == []
    assert BM25Index().build(["alpha beta"]).search("gamma") == []


def test_save_and_load_memory_mapped(tmp_path: Path) -> None:
    corpus = _corpus(3, 200)
    index = BM25Index(k1=1.2, b=0.6).build_from_tokens(corpus)
    index.save(tmp_path / "ix")
    loaded = BM25Index.load(tmp_path / "ix", mmap=True)
    assert isinstance(loaded.data, np.memmap) and isinstance(loaded.indptr, np.memmap)
    assert (loaded.k1, loaded.b, loaded.method, loaded.num_docs) == (1.2, 0.6, "lucene", 200)
    assert loaded.vocab == index.vocab
    for query in (["w5", "w17"], ["w100"], ["w3", "w3", "w250"]):
        assert loaded.search(query, 10) == index.search(query, 10)
    in_memory = BM25Index.load(tmp_path / "ix", mmap=False)
    assert not isinstance(in_memory.data, np.memmap)
    assert in_memory.search(["w5"], 5) == index.search(["w5"], 5)


def test_string_queries_and_chunk_objects() -> None:
    class Item:
        def __init__(self, text: str) -> None:
            self.text = text

    index = BM25Index().build([Item("Photosynthesis converts light"), Item("Respiration releases energy")])
    assert index.search("light photosynthesis", 1)[0][0] == 0
    assert index.search(["energi"], 1)[0][0] == 1


def test_invalid_method() -> None:
    with pytest.raises(ValueError, match="unsupported BM25 method"):
        BM25Index(method="nonsense")
