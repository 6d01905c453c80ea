"""Keyword generation: constrained output, the question's own terms always kept, fallback, cache, Chinese."""

from __future__ import annotations

import json

from lector.llm.scripted import ScriptedBackend
from lector.retrieval.keywords import (
    KeywordCache,
    detect_languages,
    generate_keywords,
    keyword_schema,
    question_keywords,
    question_terms,
)
from lector.retrieval.library import Library


def test_question_terms_keep_content_words_not_framing_words() -> None:
    terms = question_terms("Which character in the book did the author say owned the Zorblat manifesto?")
    assert "zorblat" in terms and "manifesto" in terms and "owned" in terms
    assert not {"character", "book", "author", "say", "which", "the"} & set(terms)


async def test_model_keywords_are_added_to_the_question_terms() -> None:
    backend = ScriptedBackend([json.dumps({"keywords_en": ["author", "Zorblat", "pamphlet"]})])
    kw = await generate_keywords(backend, "Who owned the Zorblat manifesto?", ["en"], cache=KeywordCache())
    assert not kw.fallback
    assert kw.keywords == ["Zorblat", "pamphlet"]  # the generic "author" is dropped
    assert kw.query.split()[:3] == ["owned", "zorblat", "manifesto"]
    assert "pamphlet" in kw.query
    options = backend.requests[0]["options"]
    assert options.json_schema == keyword_schema(["en"]) and options.max_tokens <= 160


async def test_garbage_output_falls_back_to_the_question_terms() -> None:
    for garbage in ["keywords keywords keywords keywords", '{"keywords_en": []}', '{"keywords_en": ["the", "book"]}']:
        backend = ScriptedBackend([garbage])
        kw = await generate_keywords(backend, "When did the lighthouse burn down?", ["en"], cache=KeywordCache())
        assert kw.fallback
        assert kw.query == "lighthouse burn"


async def test_model_failure_falls_back_and_is_not_cached() -> None:
    def boom(*_: object) -> str:
        raise RuntimeError("engine down")

    cache = KeywordCache()
    kw = await generate_keywords(ScriptedBackend([boom]), "Where is the vault?", ["en"], cache=cache)
    assert kw.fallback and kw.query == "vault"
    assert len(cache) == 0


async def test_results_are_cached_by_model_question_and_languages(tmp_path) -> None:
    reply = json.dumps({"keywords_en": ["vault"], "keywords_zh": ["金库"]})
    backend = ScriptedBackend(default=reply)
    cache = KeywordCache(tmp_path / "kw.json")
    await generate_keywords(backend, "Where is the vault?", ["en", "zh"], cache=cache)
    await generate_keywords(backend, "Where is the vault?", ["en", "zh"], cache=cache)
    assert len(backend.requests) == 1
    await generate_keywords(backend, "Where is the vault?", ["en"], cache=cache)
    assert len(backend.requests) == 2
    reloaded = KeywordCache(tmp_path / "kw.json")
    again = await generate_keywords(backend, "Where is the vault?", ["en", "zh"], cache=reloaded)
    assert len(backend.requests) == 2 and "金库" in again.keywords


def test_detect_languages() -> None:
    assert detect_languages(["The quick brown fox jumps over the lazy dog."]) == ["en"]
    assert detect_languages(["长城是中国古代的军事防御工程，修建历史可以追溯到西周时期。"]) == ["zh"]
    mixed = "Python 是一种编程语言，由 Guido van Rossum 创建。它的设计哲学强调代码可读性。"
    assert detect_languages([mixed]) == ["en", "zh"]


async def test_chinese_question_searches_a_chinese_document(tmp_path) -> None:
    library = Library(cache_dir=tmp_path)
    filler = "".join(f"第{i}段讲的是天气、农田和山谷里的日常生活。" for i in range(400))
    text = filler + "\n\n灯塔看守人欧瓦德在一八八七年把塔身漆成了绿色。\n\n" + filler
    doc = library.add_text(text, "灯塔.txt")
    question = "灯塔看守人把塔漆成了什么颜色？"
    terms = question_terms(question)
    assert "灯塔" in terms and "看守" in terms and not {"什么", "把", "人"} & set(terms)
    backend = ScriptedBackend([json.dumps({"keywords_zh": ["灯塔", "漆"]})])
    kw = await generate_keywords(backend, question, ["zh"], cache=KeywordCache())
    assert "keywords_zh" in backend.requests[0]["options"].json_schema["properties"]
    hits = library.search(kw.query, k=3, doc_ids=[doc])
    assert "欧瓦德" in hits[0].chunk.text


def test_a_bare_name_with_parentheses_stays_code() -> None:
    assert "sin()" in question_terms("What is the default of `where` in `sin()`?")
    assert "::sin(" in question_keywords("What is the default of `where` in `sin()`?").query
    assert "ktime_get" in question_terms("What does ktime_get() return?")  # a code name already: bare
