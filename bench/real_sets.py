"""Question sets for bench/eval_real.py, built mechanically from real text nobody on the team wrote.

- brown-quotes: lines quoted from the Brown corpus (../shared/corpora/brown.txt.xz); half of them spans made
  mostly of stop words, each found once in the corpus. Asked: which words follow the line. Expected: the next
  two words of the text.
- brown-speakers: spoken lines of the Brown corpus whose speaker the next words name (`` ... '' , Pratt said);
  each line found once in the corpus. Asked: who says the line. Expected: the name.
- linux-signatures: `.. c:function::` signatures of the Linux 6.1 Documentation/ reST
  (../shared/corpora/linux_docs.txt.xz). Asked: a function's return type or a parameter's type.
- manual-defaults: a reST manual made from the installed numpy's, networkx's and sympy's own signatures and
  docstrings, one `.. function:: name(signature)` per function under its module's heading (numpy,
  numpy.linalg, networkx, sympy, ...). Asked with the dotted path: a parameter's default value, as the
  signature writes it.
- manual-hops: two and three hops along "See Also" (the first function a docstring lists there), then a
  default value of the function reached.
- compound: two parts about one subject in one question (two defaults of one numpy function; the return
  type and a parameter type of one Linux function). Both values must be in the answer.

Every expected answer is read off the text or the signatures by code; `gold` holds the lines that state it.
"""

from __future__ import annotations

import inspect
import lzma
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
MANUAL_MODULES = (
    "numpy",
    "numpy.linalg",
    "numpy.fft",
    "numpy.ma",
    "numpy.polynomial.polynomial",
    "networkx",
    "sympy",
)


GOLD_AFTER = "\x00"
"""In a gold entry "A\x00B", B is the first occurrence of B after A (a line of one function's section)."""


def locate(text: str, gold: str) -> tuple[int, int] | None:
    """Where a gold entry lies in `text` (see GOLD_AFTER)."""
    anchor, _, line = gold.rpartition(GOLD_AFTER)
    start = text.find(anchor) if anchor else 0
    at = text.find(line, max(start, 0)) if start >= 0 else -1
    return (at, at + len(line)) if at >= 0 else None


@dataclass
class Question:
    qid: str
    kind: str
    question: str
    expected: list[str]
    """Every one must appear in the answer."""
    gold: list[str] = field(default_factory=list)
    """Exact lines of the document that hold the answer (each needed: one per hop)."""
    hops: int = 1
    chain: list[str] = field(default_factory=list)
    """For a chain of relations: the entity each lookup starts from (the question's, then each hop's gold
    answer), so that each hop's own search can be scored on its own."""


@dataclass
class QuestionSet:
    name: str
    source: str
    """The document's file name."""
    text: str
    questions: list[Question]


def read_corpus(name: str) -> str:
    return lzma.decompress((CORPORA / name).read_bytes()).decode("utf-8")


# --- brown-quotes -------------------------------------------------------------------------------------------

_STOP = frozenset(
    "a an the and or but of to in on at by for with from is are was were be been it its this that as not he she "
    "they we you i me him her them his their our my your so if then there here what which who when all no do did "
    "have has had will would can could should may might must shall let us one out up".split()
)
FRAMES = (
    'Which words come right after "{q}" in the text?',
    'In these samples of American English from 1961, what follows the line "{q}"?',
    'According to the documents, how does the sentence continue after "{q}"?',
    'Someone quotes "{q}". Which two words come next in the text?',
)


def _words_with_offsets(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[A-Za-z][A-Za-z'-]*", text)]


def _norm(words: list[str]) -> str:
    return " ".join(w.lower() for w in words)


def brown_quotes(rng: random.Random, count: int = 44) -> QuestionSet:
    text = read_corpus("brown.txt.xz")
    words = _words_with_offsets(text)
    stop_spans: list[tuple[int, int]] = []
    plain_spans: list[tuple[int, int]] = []
    for _ in range(40 * count):
        i = rng.randrange(0, len(words) - 12)
        length = rng.choice((4, 5)) if len(stop_spans) < count // 2 else rng.randint(6, 9)
        run = words[i : i + length + 2]  # the quote and the two words that follow it
        if any(text[a[2] : b[1]].strip() for a, b in zip(run, run[1:], strict=False)):
            continue  # no punctuation inside the quote or between it and its next two words
        span = run[:length]
        stops = sum(w.lower() in _STOP for w, _, _ in span) / length
        target = stop_spans if length <= 5 else plain_spans
        if (length <= 5 and stops >= 0.75) or (length > 5 and stops <= 0.6):
            target.append((i, length))
    counts = Counter(_norm([w for w, _, _ in words[j : j + n]]) for n in (4, 5) for j in range(len(words) - n))
    questions: list[Question] = []
    for pool in (stop_spans, plain_spans):
        chosen = 0
        for i, length in pool:
            span = words[i : i + length]
            if length <= 5 and counts[_norm([w for w, _, _ in span])] != 1:
                continue
            quote = " ".join(w for w, _, _ in span)
            after = [w for w, _, _ in words[i + length : i + length + 2]]
            line = text[span[0][1] : words[i + length + 1][2]]
            if "\n" in line:
                continue
            questions.append(
                Question(
                    qid=f"bq{len(questions)}",
                    kind="stop-word quote" if length <= 5 else "quote",
                    question=rng.choice(FRAMES).format(q=quote),
                    expected=[" ".join(after)],
                    gold=[line],
                )
            )
            chosen += 1
            if chosen >= count // 2:
                break
    return QuestionSet("brown-quotes", "brown.txt", text, questions)


SPEAKER_FRAMES = (
    'Who says "{q}"?',
    'In these samples of American English from 1961, which person speaks the line "{q}"?',
    'According to the documents, who is quoted as saying "{q}"?',
    'Someone quotes "{q}". Who said it?',
)
_SPEECH_VERBS = "said|asked|replied|cried|called|answered|whispered|shouted|added|explained|insisted|declared"
_ATTRIBUTED = re.compile(
    rf"`` (?P<q>[^`'\n]+?) '' , (?:(?P<a>[A-Z][a-z]+) (?:{_SPEECH_VERBS})|(?:{_SPEECH_VERBS}) (?P<b>[A-Z][a-z]+))"
    r"(?= [.,])"
)
_NOT_NAMES = frozenset("He She They We It I You Mr Mrs Dr Miss Ms Mother Father".split())


def brown_speakers(rng: random.Random, count: int = 44) -> QuestionSet:
    text = read_corpus("brown.txt.xz")
    found = list(_ATTRIBUTED.finditer(text))
    rng.shuffle(found)
    questions: list[Question] = []
    for m in found:
        name, words = m.group("a") or m.group("b"), m.group("q").split()
        if name in _NOT_NAMES or len(words) < 4:
            continue
        quote = " ".join(words[:10])
        if text.count(quote) != 1 or any(not any(c.isalpha() for c in w) for w in (words[0], words[-1])):
            continue
        frame = rng.choice(SPEAKER_FRAMES)
        line = text[m.start() : m.end()]
        asked = re.sub(r" ([,.;:?!])(?= |$)", r"\1", quote)  # "Sit down , sit down" as "Sit down, sit down"
        questions.append(Question(f"bs{len(questions)}", "speaker", frame.format(q=asked), [name], [line]))
        if len(questions) >= count:
            break
    return QuestionSet("brown-speakers", "brown.txt", text, questions)


# --- linux-signatures -----------------------------------------------------------------------------------------

_C_FUNCTION = re.compile(r"^\.\. c:function::[ \t]*\n?[ \t]*(\S[^\n]*?\))", re.M)
_C_SIGNATURE = re.compile(r"^(?P<ret>[\w\s\*]+?)\s*\b(?P<name>\w+)\s*\((?P<args>.*)\)$")


@dataclass
class CFunction:
    name: str
    returns: str
    params: list[tuple[str, str]]
    """(name, type)"""
    line: str


def c_functions(text: str) -> list[CFunction]:
    out: list[CFunction] = []
    for match in _C_FUNCTION.finditer(text):
        line = " ".join(match.group(1).split())
        sig = _C_SIGNATURE.match(line)
        if not sig:
            continue
        params = []
        for arg in sig.group("args").split(","):
            parts = re.match(r"^\s*(?P<type>[\w\s\*]+?[\s\*])(?P<name>\w+)\s*$", arg)
            if parts:
                params.append((parts.group("name"), " ".join(parts.group("type").replace("*", " * ").split())))
        returns = " ".join(sig.group("ret").replace("*", " * ").split())
        out.append(CFunction(sig.group("name"), returns, params, match.group(1).strip()))
    names = Counter(f.name for f in out)
    return [f for f in out if names[f.name] == 1]


def linux_signatures(rng: random.Random, count: int = 44) -> QuestionSet:
    text = read_corpus("linux_docs.txt.xz")
    functions = c_functions(text)
    rng.shuffle(functions)
    questions: list[Question] = []
    for f in functions:
        if len(questions) % 2 == 0 or not f.params:
            q = f"In the Linux kernel documentation, what is the return type of `{f.name}()`?"
            questions.append(Question(f"ls{len(questions)}", "return type", q, [f.returns], [f.line]))
        else:
            pname, ptype = rng.choice(f.params)
            q = f"What is the type of the `{pname}` parameter of `{f.name}()` in the kernel docs?"
            questions.append(Question(f"ls{len(questions)}", "parameter type", q, [ptype], [f.line]))
        if len(questions) >= count:
            break
    return QuestionSet("linux-signatures", "linux_docs.txt", text, questions)


# --- the numpy manual ------------------------------------------------------------------------------------------


_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


@dataclass
class PyFunction:
    module: str
    name: str
    signature: inspect.Signature
    doc: str

    @property
    def path(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def line(self) -> str:
        """The signature line, without the memory addresses a default's repr holds (`<function f at 0x7f...>`),
        which would make the manual differ from one process to the next."""
        return f".. function:: {self.name}{_ADDRESS.sub('', str(self.signature))}"

    def defaults(self) -> dict[str, str]:
        return {
            p.name: repr(p.default)
            for p in self.signature.parameters.values()
            if p.default is not inspect.Parameter.empty
            and len(repr(p.default)) <= 24
            and p.name != "backend"
            and not repr(p.default).startswith("<")  # a sentinel such as <no value>: no text writes it
        }

    def see_also_line(self) -> str:
        match = re.search(r"See Also\n\s*-+\n\s*([^\n]+)", self.doc)
        return match.group(1).strip() if match else ""

    def see_also(self) -> str | None:
        """The first function the docstring lists under See Also (its last dotted part)."""
        match = re.match(r"[\w.]+", self.see_also_line())
        return match.group(0).rsplit(".", 1)[-1] if match else None


def _public_functions(module_name: str) -> Iterator[PyFunction]:
    import importlib

    module = importlib.import_module(module_name)
    for name in sorted(getattr(module, "__all__", dir(module))):
        obj = getattr(module, name, None)
        if name.startswith("_") or inspect.isclass(obj) or inspect.ismodule(obj) or not callable(obj):
            continue
        if not isinstance(getattr(obj, "__doc__", None), str) or not obj.__doc__.strip():
            continue
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        yield PyFunction(module_name, name, signature, inspect.cleandoc(obj.__doc__))


def manual_functions() -> list[PyFunction]:
    seen: set[str] = set()
    out: list[PyFunction] = []
    for module in MANUAL_MODULES:
        for f in _public_functions(module):
            if f.name not in seen:  # one section per name, so "the function X" is one thing
                seen.add(f.name)
                out.append(f)
    return out


def numpy_manual(functions: list[PyFunction]) -> str:
    parts: list[str] = []
    module = ""
    for f in functions:
        if f.module != module:
            module = f.module
            parts.append(f"{module}\n{'=' * len(module)}\n\n.. module:: {module}\n")
        body = "\n".join(("   " + line).rstrip() for line in f.doc.splitlines())
        parts.append(f"{f.line}\n\n{body}\n")
    return "\n".join(parts)


def _default_question(f: PyFunction, param: str, qid: str) -> Question:
    q = f"What is the default value of the `{param}` parameter of `{f.path}`?"
    return Question(qid, "default value", q, [f.defaults()[param]], [f.line])


def numpy_defaults(rng: random.Random, count: int = 44) -> QuestionSet:
    functions = manual_functions()
    pool = [f for f in functions if f.defaults()]
    rng.shuffle(pool)
    questions = [_default_question(f, rng.choice(sorted(f.defaults())), f"nd{i}") for i, f in enumerate(pool[:count])]
    return QuestionSet("manual-defaults", "manual.rst", numpy_manual(functions), questions)


def _chain(by_name: dict[str, PyFunction], start: PyFunction, hops: int) -> list[PyFunction] | None:
    chain = [start]
    while len(chain) < hops + 1:
        nxt = by_name.get(chain[-1].see_also() or "")
        if nxt is None or nxt in chain:
            return None
        chain.append(nxt)
    return chain if chain[-1].defaults() else None


def _hop_question(chain: list[PyFunction], rng: random.Random, qid: str) -> Question:
    last = chain[-1]
    param = rng.choice(sorted(last.defaults()))
    subject = f"`{chain[0].path}`"
    for _ in chain[1:]:
        subject = f"the first See Also entry of {subject}"
    q = f"What is the default value of `{param}` in {subject}?"
    gold = [f"{f.line}{GOLD_AFTER}{f.see_also_line()}" for f in chain[:-1]] + [last.line]
    entities = [chain[0].path, *(f.name for f in chain[1:])]
    return Question(qid, f"{len(chain) - 1}-hop", q, [last.defaults()[param]], gold, len(chain) - 1, entities)


def numpy_hops(rng: random.Random, count: int = 40) -> QuestionSet:
    functions = manual_functions()
    by_name = {f.name: f for f in functions}
    starts = list(functions)
    rng.shuffle(starts)
    questions: list[Question] = []
    for hops in (1, 2):
        made = 0
        for f in starts:
            chain = _chain(by_name, f, hops)
            if chain and made < count // 2:
                questions.append(_hop_question(chain, rng, f"nh{len(questions)}"))
                made += 1
    return QuestionSet("manual-hops", "manual.rst", numpy_manual(functions), questions)


def numpy_compound(rng: random.Random, count: int = 40) -> QuestionSet:
    functions = manual_functions()
    pool = [f for f in functions if len(f.defaults()) >= 2]
    rng.shuffle(pool)
    questions: list[Question] = []
    for f in pool[:count]:
        a, b = rng.sample(sorted(f.defaults()), 2)
        q = f"What is the default value of `{a}` in `{f.path}`, and what is the default of `{b}`?"
        defaults = f.defaults()
        questions.append(Question(f"nc{len(questions)}", "compound", q, [defaults[a], defaults[b]], [f.line]))
    return QuestionSet("manual-compound", "manual.rst", numpy_manual(functions), questions)


BUILDERS = {
    "brown-quotes": brown_quotes,
    "brown-speakers": brown_speakers,
    "linux-signatures": linux_signatures,
    "manual-defaults": numpy_defaults,
    "manual-hops": numpy_hops,
    "manual-compound": numpy_compound,
}


def numpy_hops3(rng: random.Random, count: int = 40) -> QuestionSet:
    """manual-hops3: three hops along "See Also" (the first function each docstring lists there), then a default
    value of the function reached: four lookups in a row, each name found by the one before."""
    functions = manual_functions()
    by_name = {f.name: f for f in functions}
    starts = list(functions)
    rng.shuffle(starts)
    questions: list[Question] = []
    for f in starts:
        chain = _chain(by_name, f, 3)
        if chain:
            questions.append(_hop_question(chain, rng, f"nt{len(questions)}"))
        if len(questions) >= count:
            break
    return QuestionSet("manual-hops3", "manual.rst", numpy_manual(functions), questions)


BUILDERS["manual-hops3"] = numpy_hops3
