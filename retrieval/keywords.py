"""Search keywords for a question: the model writes them in the documents' language(s), under a JSON grammar.

A small model tends to echo the question's framing ("author", "character") instead of its content, so the
query always keeps the question's own content terms, and the model's words are only added to them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from lector.llm.backend import Backend, ChatOptions
from lector.llm.messages import Message
from lector.retrieval.cjk import CJK_RUN, cjk_count, has_cjk
from lector.retrieval.phrases import quoted_spans
from lector.retrieval.reading_types import UsageMeter

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese"}

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom whose why will with would you your yours yourself
    yourselves shall may might must upon also ever many much""".split()
)

GENERIC_WORDS = frozenset(
    """author authors character characters book books text texts document documents passage passages
    chapter chapters line lines work works story stories article articles paragraph paragraphs section
    sections page pages mention mentioned mentions say says said according tell told name named names
    called question answer find describe described explain give list write written one ones thing things
    kind type something anything someone anyone person people way ways time times state states stated
    provide provided know known information detail details specific specifically exactly please speak speaks
    spoke spoken speaker quote quotes quoted phrase sentence sentences word words documentation docs manual""".split()
)

CHINESE_STOP = frozenset(
    "的 了 是 在 和 与 及 或 吗 呢 吧 啊 什么 哪个 哪些 哪里 哪 谁 怎么 怎样 如何 为什么 "
    "多少 几 这 那 这个 那个 "
    "一个 有 没有 中 里 上 下 请 问 文中 文章 书 作者 提到 说 根据".split()
)

_LATIN_TERM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_'’\-]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\w*_\w*|\w*[a-z0-9][A-Z]\w*|\w+\(\)")


def is_identifier(word: str) -> bool:
    """A code name rather than a word: a dotted path, snake_case, CamelCase or `name()`."""
    return bool(_IDENTIFIER.fullmatch(word)) and any(c.isalpha() for c in word)


def _latin_terms(text: str) -> list[str]:
    out = []
    for raw in _LATIN_TERM.findall(text):
        word = raw.strip("'’-")
        if is_identifier(word):  # "name()" keeps its parentheses where they alone make it code ("sin()")
            bare = word.removesuffix("()")
            out.append(bare if is_identifier(bare) else word)
            continue
        word = word.lower()
        if word.endswith(("'s", "’s")):
            word = word[:-2]
        if len(word) < 2 and not word.isdigit():
            continue
        if word in STOP_WORDS or word in GENERIC_WORDS:
            continue
        out.append(word)
    return out


_ARGUMENT = re.compile(r"[A-Za-z_]\w*")
_ARGUMENT_WORDS = frozenset("parameter parameters argument arguments keyword option flag".split())


def named_arguments(terms: list[str]) -> list[str]:
    """The terms next to "parameter" or "argument" ("the timeout parameter", "argument key")."""
    out = []
    for i, term in enumerate(terms):
        if term in _ARGUMENT_WORDS:
            out += [t for t in terms[max(0, i - 1) : i] + terms[i + 1 : i + 2] if t not in _ARGUMENT_WORDS]
    return [t for t in out if not is_identifier(t) or "_" in t]


def question_phrases(question: str) -> list[str]:
    """The question's quoted spans, less the code names (`numpy.fft.fft`): those are searched as identifiers."""
    return [span for span in quoted_spans(question) if not is_identifier(span.removesuffix("()"))]


def signature_terms(terms: Iterable[str]) -> list[str]:
    """ "::name(" for each identifier among `terms` (its last dotted part): tokenized, the terms of the line that
    calls it and of the one that defines it (see retrieval.bm25_terms)."""
    names = (t.removesuffix("()").rsplit(".", 1)[-1] for t in terms if is_identifier(t))
    return list(dict.fromkeys(f"::{n}(" for n in names if n))


def _chinese_terms(text: str) -> list[str]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    out = []
    for piece in CJK_RUN.findall(text):
        for word in jieba.lcut(piece):
            if word not in CHINESE_STOP and len(word) >= 2:  # single characters are mostly particles
                out.append(word)
    return out


def question_terms(question: str) -> list[str]:
    """The question's own content terms, in order and without repeats: no stop words or framing words;
    identifiers kept whole as written."""
    terms = _latin_terms(question)
    if has_cjk(question):
        terms += _chinese_terms(question)
    seen: set[str] = set()
    return [t for t in terms if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]


def detect_languages(texts: Iterable[str]) -> list[str]:
    """'en' and/or 'zh' by the share of Latin letters and CJK characters in the sample (default 'en')."""
    latin = cjk = 0
    for text in texts:
        cjk += cjk_count(text)
        latin += sum(1 for ch in text if ch.isascii() and ch.isalpha())
    total = latin + cjk
    if total == 0:
        return ["en"]
    langs = []
    if latin / total >= 0.25:
        langs.append("en")
    if cjk / total >= 0.08:  # a CJK character carries roughly a word's worth of meaning
        langs.append("zh")
    return langs or ["en"]


class Keywords(BaseModel):
    keywords: list[str] = Field(default_factory=list)
    """The model's keywords that survived filtering."""
    question_terms: list[str] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list)
    """The spans the question quotes, searched as phrases."""
    fallback: bool = False
    """True when the model's output was unusable and only the question's terms are used."""

    @property
    def terms(self) -> list[str]:
        """The question's terms, then the model's extra words, without repeats."""
        seen: set[str] = set()
        parts = []
        for term in [*self.question_terms, *self.keywords]:
            key = term.lower()
            if key not in seen:
                seen.add(key)
                parts.append(term)
        return parts

    @property
    def query(self) -> str:
        """The search query: the quoted phrases (searched as phrases, and their words weigh twice), the terms,
        and "name(" for each identifier."""
        quoted = [f'"{p}"' for p in self.phrases]
        return " ".join([*quoted, *self.terms, *signature_terms(self.question_terms)])

    @property
    def focus_terms(self) -> list[str]:
        """What the evidence's sentences are ranked by: the phrases, the terms, and each dotted identifier's last
        part and `name(` (a manual writes `name(arg=...)` under the module's heading, not the whole path), and
        `word=` for each quoted single word and each word named a parameter (as a signature writes it)."""
        bare = [t.rsplit(".", 1)[-1] for t in self.question_terms if is_identifier(t) and "." in t]
        called = [t.removeprefix("::") for t in signature_terms(self.question_terms)]
        arguments = [f"{p}=" for p in [*self.phrases, *named_arguments(self.question_terms)] if _ARGUMENT.fullmatch(p)]
        return list(dict.fromkeys([*self.phrases, *self.terms, *bare, *called, *arguments]))


class KeywordCache:
    """Keyword results keyed by model, question and document languages; optionally persisted as JSON."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            try:
                self._data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("ignoring unreadable keyword cache %s", self.path)

    @staticmethod
    def key(model: str, question: str, languages: list[str]) -> str:
        raw = "\n".join([model, question.strip(), ",".join(sorted(languages))])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def get(self, key: str) -> Keywords | None:
        with self._lock:
            data = self._data.get(key)
        return Keywords.model_validate(data) if data else None

    def put(self, key: str, value: Keywords) -> None:
        with self._lock:
            self._data[key] = value.model_dump()
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._data, ensure_ascii=False), encoding="utf-8")
                tmp.replace(self.path)

    def __len__(self) -> int:
        return len(self._data)


DEFAULT_CACHE = KeywordCache()


def keyword_schema(languages: list[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for lang in languages:
        props[f"keywords_{lang}"] = {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 32},
            "minItems": 1,
            "maxItems": 8,
        }
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def keyword_messages(question: str, languages: list[str]) -> list[Message]:
    names = " and ".join(LANGUAGE_NAMES.get(lang, lang) for lang in languages)
    examples = {
        "zh": '["佐恩", "宫殿", "城堡", "建造", "修建", "落成"]',
        "en": '["Zorn", "palace", "castle", "constructed", "erected", "completed"]',
    }
    example_keys = ", ".join(f'"keywords_{lang}": {examples.get(lang, examples["en"])}' for lang in languages)
    system = (
        f"You write search keywords for finding the answer to a question in a document: up to 8 keywords in "
        f"{names}, the names, rare words and synonyms likely to appear in the passage that holds the answer, and "
        "other words for the question's words (the passage may say it differently). Not generic words such as "
        "'author', 'character', 'book'. Reply with JSON only.\n"
        f'Example for "In one word, when was the palace of Zorn built?": {{{example_keys}}}'
    )
    return [Message.system(system), Message.user(question.strip())]


def _usable(words: Any) -> list[str]:
    if not isinstance(words, list):
        return []
    out = []
    for word in words:
        if not isinstance(word, str):
            continue
        word = " ".join(word.split()).strip(" \"'.,;:")
        if not word or len(word) > 32:
            continue
        if word.lower() in GENERIC_WORDS or word.lower() in STOP_WORDS or word in CHINESE_STOP:
            continue
        out.append(word)
    return out


def parse_keywords(text: str, languages: list[str]) -> Keywords | None:
    """The model's JSON reply as Keywords, or None when it is unusable."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError:
        match = re.search(r"\{.*\}", text, re.DOTALL)
        if not match:
            return None
        try:
            data = json.loads(match.group(0))
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    words: list[str] = []
    for lang in languages:
        words += _usable(data.get(f"keywords_{lang}"))
    words += _usable(data.get("keywords"))
    seen: set[str] = set()
    words = [w for w in words if not (w.lower() in seen or seen.add(w.lower()))]  # type: ignore[func-returns-value]
    if not words:
        return None
    return Keywords(keywords=words[:12])


def question_keywords(question: str) -> Keywords:
    """The query made of the question alone (no model): its terms and quoted phrases."""
    terms = question_terms(question)
    phrases = question_phrases(question)
    return Keywords(question_terms=terms or ([] if phrases else [question]), phrases=phrases, fallback=True)


async def generate_keywords(
    backend: Backend,
    question: str,
    languages: list[str] | None = None,
    meter: UsageMeter | None = None,
    cache: KeywordCache | None = None,
    max_tokens: int = 120,
) -> Keywords:
    """Keywords for `question` in `languages`; never fails (falls back to the question's own terms)."""
    languages = languages or ["en"]
    cache = cache if cache is not None else DEFAULT_CACHE
    key = KeywordCache.key(backend.name, question, languages)
    terms = question_terms(question)
    phrases = question_phrases(question)
    cached = cache.get(key)
    if cached is not None:  # the model's words are cached; the question's own part is made as this code makes it
        return cached if cached.fallback else cached.model_copy(update={"question_terms": terms, "phrases": phrases})
    parsed: Keywords | None = None
    failed = False
    try:
        options = ChatOptions(temperature=0.0, max_tokens=max_tokens, json_schema=keyword_schema(languages))
        messages = keyword_messages(question, languages)
        meter = meter or UsageMeter()
        result = await meter.chat(backend, messages, options)
        parsed = parse_keywords(result.message.content, languages)
    except Exception as exc:  # keyword generation is an optimisation; the question's terms still work
        log.warning("keyword generation failed: %s", exc)
        failed = True
    if parsed is None:
        out = Keywords(question_terms=terms, phrases=phrases, fallback=True)
    else:
        out = parsed.model_copy(update={"question_terms": terms, "phrases": phrases})
    if not out.query.strip():  # a question of only stop words: search with it as it is
        out = Keywords(question_terms=[question.strip()], fallback=True)
    if not failed:
        cache.put(key, out)
    return out
