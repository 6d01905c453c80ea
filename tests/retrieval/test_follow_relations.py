"""Following a relation in a manual where the name recurs hundreds of times (retrieval/follow_relations.py): the
hop reads the relation where the name is defined, not where it is called or listed. SCRIPTED model only."""

from __future__ import annotations

import json
import re

from lector.llm.backend import ChatOptions
from lector.llm.messages import Message
from lector.llm.scripted import ScriptedBackend
from lector.retrieval.answer_prompt import ANSWER_SCHEMA
from lector.retrieval.context import ReadingContext
from lector.retrieval.follow_relations import NAME_SCHEMA, defines, follow_relations, hop_query
from lector.retrieval.keywords import KeywordCache
from lector.retrieval.library import Library

_EXAMPLES = "".join(f"   >>> sin(x{j}) + sin(y{j})\n   {j}.5\n" for j in range(40))


def manual(tmp_path) -> Library:
    """`sin` is called in the examples of 300 other functions and listed in their See Also; its own section is
    long, so its See Also lies chunks after its definition line."""
    sections = [
        f".. function:: tool{i}(x, mode='m{i}')\n\n   Does step {i} with sin.\n\n   Examples\n   --------\n"
        f"   >>> tool{i}(sin(0.5))\n   >>> sin(tool{i}(1))\n\n   See Also\n   --------\n   sin : the sine.\n"
        for i in range(300)
    ]
    body = "".join(f"   The sine of angle number {j} is read in radians, element by element.\n" for j in range(200))
    sections.insert(
        150,
        f".. function:: sin(x, /, out=None)\n\n{body}\n   Examples\n   --------\n{_EXAMPLES}\n"
        "   See Also\n   --------\n   arcsin : the inverse.\n   cos : the cosine.\n",
    )
    sections.append(".. function:: arcsin(x, /, out=None, where=True)\n\n   The inverse sine.\n")
    lib = Library(cache_dir=tmp_path)
    lib.add_text("\n\n".join(sections), "manual.rst")
    return lib


def first_listed(prompt: str) -> str:
    """What a careful reader names: the first entry under the first See Also of the evidence."""
    match = re.search(r"See Also\s*-+\s*(\w+)", prompt)
    return match.group(1) if match else ""


async def test_the_relation_is_read_where_the_name_is_defined(tmp_path) -> None:
    prompts: list[str] = []

    def reply(messages: list[Message], tools: object, options: ChatOptions) -> str:
        prompts.append(messages[-1].content)
        if options.json_schema == NAME_SCHEMA:
            return json.dumps({"name": first_listed(messages[-1].content)})
        assert options.json_schema == ANSWER_SCHEMA
        return json.dumps({"answer": "True", "evidence": [2]})

    ctx = ReadingContext(manual(tmp_path), ScriptedBackend(default=reply), keyword_cache=KeywordCache())
    question = "What is the default value of `where` in the first See Also entry of `numpy.sin`?"
    answer = await follow_relations(ctx, question)
    assert answer is not None and answer.details["facts"] == ["the first See Also entry of numpy.sin is arcsin"]
    link = answer.details["links"][0]["citations"][0].text
    assert "arcsin : the inverse" in link and "sin : the sine" not in link  # sin's own list, not one naming it
    assert len(prompts) == 1, "the list is read without the model; one call answers about the end"
    assert "`arcsin()`" in prompts[-1] and "where=True" in prompts[-1]


def test_a_code_name_is_searched_where_it_is_defined() -> None:
    query = hop_query("numpy.sin", "first See Also entry")
    assert '"function sin"' in query and '"def sin"' in query
    assert defines(".. function:: sin(x, /, out=None)", "sin") and defines("def numpy.sin(x):", "sin")
    assert not defines(">>> np.sin(x)", "sin") and not defines("the function sine(x)", "sin")
