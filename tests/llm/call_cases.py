"""The parser's case table: model outputs, with the calls, visible text and error each must give.

Shared by the parser's own tests (test_tool_calls.py) and by every backend's prompt mode
(test_prompt_calling.py), so that all of them are held to the same answers.
"""

from __future__ import annotations

import json
from typing import Any

from lector.llm.messages import ToolSpec

CALC = ToolSpec(
    name="calculator",
    description="Evaluate arithmetic.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
        "additionalProperties": False,
    },
)
FETCH = ToolSpec(
    name="web_fetch",
    description="Fetch a URL.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string"}, "max_chars": {"type": "integer"}},
        "required": ["url"],
    },
)
TOOLS = [CALC, FETCH]
ADD = ToolSpec(
    name="add",
    description="Add two numbers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
)
"""A tool for the backends' own tests (test_openai_http.py, test_transformers_backend.py)."""

E = {"expression": "2+2"}
ECHO = json.dumps(CALC.to_openai())
"""A tool's definition, as a model sometimes echoes it back instead of calling the tool."""
TC = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>'

# (id, model output, expected calls as (name, arguments), expected text, error substring or None)
# Every case is parsed with TOOLS known, except where the id ends in "-notools".
CASES: list[tuple[str, str, list[tuple[str, dict[str, Any]]], str, str | None]] = [
    # --- well-formed
    ("hermes", TC, [("calculator", E)], "", None),
    ("hermes-with-text", "Let me compute that.\n" + TC, [("calculator", E)], "Let me compute that.", None),
    (
        "hermes-parallel",
        TC + '\n<tool_call>\n{"name": "web_fetch", "arguments": {"url": "https://a.org"}}\n</tool_call>',
        [("calculator", E), ("web_fetch", {"url": "https://a.org"})],
        "",
        None,
    ),
    (
        "hermes-no-close",
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "hermes-parameters-key",
        '<tool_call>{"name": "calculator", "parameters": {"expression": "2+2"}}</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "hermes-openai-shape",
        '<tool_call>{"type": "function", "function": {"name": "calculator", "arguments": "{\\"expression\\": '
        '\\"2+2\\"}"}}</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "hermes-args-as-string",
        '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"2+2\\"}"}</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    ("hermes-no-arguments", '<tool_call>{"name": "calculator"}</tool_call>', [("calculator", {})], "", None),
    (
        "hermes-list-in-one-block",
        '<tool_call>[{"name": "calculator", "arguments": {"expression": "1"}}, '
        '{"name": "calculator", "arguments": {"expression": "2"}}]</tool_call>',
        [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})],
        "",
        None,
    ),
    (
        "hermes-fence-inside-tag",
        '<tool_call>\n```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```\n</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "hermes-second-missing-close",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}}\n'
        '<tool_call>{"name": "calculator", "arguments": {"expression": "2"}}</tool_call>',
        [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})],
        "",
        None,
    ),
    (
        "fenced-json",
        'I will use the calculator.\n```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```',
        [("calculator", E)],
        "I will use the calculator.",
        None,
    ),
    (
        "fenced-plain",
        '```\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "fenced-tool_call-lang",
        '```tool_call\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n```',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "fenced-list",
        '```json\n[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "web_fetch", '
        '"arguments": {"url": "u"}}]\n```',
        [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})],
        "",
        None,
    ),
    ("bare-json", '{"name": "calculator", "arguments": {"expression": "2+2"}}', [("calculator", E)], "", None),
    (
        "bare-json-then-text",
        '  {"name": "calculator", "arguments": {"expression": "2+2"}}\nThen I will answer.',
        [("calculator", E)],
        "Then I will answer.",
        None,
    ),
    (
        "bare-list",
        '[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "calculator", '
        '"arguments": {"expression": "2"}}]',
        [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})],
        "",
        None,
    ),
    (
        "embedded-known-tool",
        'Sure, calling {"name": "calculator", "arguments": {"expression": "2+2"}} now.',
        [("calculator", E)],
        "Sure, calling now.",
        None,
    ),
    (
        "qwen-markers",
        '✿FUNCTION✿: calculator\n✿ARGS✿: {"expression": "2+2"}\n✿RESULT✿: 4\n✿RETURN✿: It is 4',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "qwen-markers-two",
        'Let me see.\n✿FUNCTION✿: calculator\n✿ARGS✿: {"expression": "1"}\n✿FUNCTION✿: web_fetch\n✿ARGS✿: {"url": "u"}',
        [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})],
        "Let me see.",
        None,
    ),
    (
        "qwen3-coder-xml",
        "<tool_call>\n<function=web_fetch>\n<parameter=url>\nhttps://a.org\n</parameter>\n"
        "<parameter=max_chars>\n500\n</parameter>\n</function>\n</tool_call>",
        [("web_fetch", {"url": "https://a.org", "max_chars": 500})],
        "",
        None,
    ),
    (
        "qwen3-coder-xml-string-stays-string",
        "<tool_call><function=calculator><parameter=expression>12</parameter></function></tool_call>",
        [("calculator", {"expression": "12"})],
        "",
        None,
    ),
    (
        "imagined-response-dropped",
        TC + "\n<tool_response>\n4\n</tool_response>\nThe answer is 4.",
        [("calculator", E)],
        "",
        None,
    ),
    (
        "think-then-call",
        "<think>The user wants 2+2. I should call the calculator.</think>\n" + TC,
        [("calculator", E)],
        "",
        None,
    ),
    ("plain-answer", "The answer is 4.", [], "The answer is 4.", None),
    (
        "unicode",
        '<tool_call>{"name": "web_fetch", "arguments": {"url": "https://例え.jp/ü?q=ß", "max_chars": 5}}'
        "</tool_call>日本語の説明",
        [("web_fetch", {"url": "https://例え.jp/ü?q=ß", "max_chars": 5})],
        "日本語の説明",
        None,
    ),
    # --- malformed but repairable
    (
        "trailing-comma",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2",},}</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "single-quotes",
        "<tool_call>{'name': 'calculator', 'arguments': {'expression': '2+2'}}</tool_call>",
        [("calculator", E)],
        "",
        None,
    ),
    (
        "python-literals",
        '<tool_call>{"name": "web_fetch", "arguments": {"url": "u", "raw": True, "x": None}}</tool_call>',
        [("web_fetch", {"url": "u", "raw": True, "x": None})],
        "",
        None,
    ),
    (
        "missing-braces-at-end",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2"</tool_call>',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "truncated-output",
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+',
        [("calculator", {"expression": "2+"})],
        "",
        None,
    ),
    (
        "raw-newline-in-string",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1 +\n2"}}</tool_call>',
        [("calculator", {"expression": "1 +\n2"})],
        "",
        None,
    ),
    (
        "comments",
        '```json\n{\n  // the tool\n  "name": "calculator", /* why */ "arguments": {"expression": "2+2"}\n}\n```',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "unescaped-inner-quotes",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "len("ab")"}}</tool_call>',
        [("calculator", {"expression": 'len("ab")'})],
        "",
        None,
    ),
    # --- adversarial
    (
        "nested-braces-in-strings",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "{[}] \\" }}"}}</tool_call>',
        [("calculator", {"expression": '{[}] " }}'})],
        "",
        None,
    ),
    (
        "fence-with-user-json",
        'Here is the JSON you asked for:\n```json\n{"name": "Ada", "age": 36}\n```',
        [],
        'Here is the JSON you asked for:\n```json\n{"name": "Ada", "age": 36}\n```',
        None,
    ),
    (
        "fence-unknown-tool-is-data",
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        [],
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        None,
    ),
    (
        "tag-unknown-tool-is-call",
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>',
        [("get_weather", {"city": "Paris"})],
        "",
        None,
    ),
    (
        "python-fence-with-markup",
        '```python\nprint("<tool_call>{}</tool_call>")\n```\nDone.',
        [],
        '```python\nprint("<tool_call>{}</tool_call>")\n```\nDone.',
        None,
    ),
    (
        "call-inside-think",
        '<think>maybe <tool_call>{"name": "calculator", "arguments": {}}</tool_call></think>No tool needed: 4.',
        [],
        "No tool needed: 4.",
        None,
    ),
    ("unclosed-think", '<think>I might call {"name": "calculator", "arguments": {"expression": "1"}}', [], "", None),
    ("close-think-only", "the user wants a number</think>\n\n" + TC, [("calculator", E)], "", None),
    (
        "braces-in-prose",
        "Sets look like {1, 2} and maps like {a: b}.",
        [],
        "Sets look like {1, 2} and maps like {a: b}.",
        None,
    ),
    ("bare-json-not-a-call", '{"answer": 42}', [], '{"answer": 42}', None),
    ("lone-flower", "I ✿ love flowers", [], "I ✿ love flowers", None),
    ("not-json-in-tag", "<tool_call>call the calculator please</tool_call>", [], "", "tool call 1 is not valid JSON"),
    ("empty-tag", "Hmm <tool_call></tool_call>", [], "Hmm", "tool call 1 is empty"),
    (
        "no-name-in-tag",
        '<tool_call>{"arguments": {"expression": "1"}}</tool_call>',
        [],
        "",
        "tool call 1 has no function name",
    ),
    (
        "args-not-object",
        '<tool_call>{"name": "calculator", "arguments": [1, 2]}</tool_call>',
        [],
        "",
        "arguments must be a JSON object",
    ),
    (
        "args-string-garbage",
        '<tool_call>{"name": "calculator", "arguments": "two plus two"}</tool_call>',
        [],
        "",
        "arguments string is not valid JSON",
    ),
    (
        "one-good-one-bad",
        TC + "\n<tool_call>oops</tool_call>",
        [("calculator", E)],
        "",
        "tool call 2 is not valid JSON",
    ),
    ("garbage", "\x00\x01}{][<<>>``✿" * 50, [], "\x00\x01}{][<<>>``✿" * 50, None),
    ("deeply-nested", "<tool_call>" + '{"a":' * 5000 + "</tool_call>", [], "", "not valid JSON"),
    (
        "fence-unclosed-call",
        '```json\n{"name": "calculator", "arguments": {"expression": "2+2"}}',
        [("calculator", E)],
        "",
        None,
    ),
    (
        "fence-unknown-notools",
        '```json\n{"name": "anything", "arguments": {"x": 1}}\n```',
        [("anything", {"x": 1})],
        "",
        None,
    ),
    # --- parallel calls, in the forms models write them
    (
        "fence-several-objects",
        '```json\n{"name": "calculator", "arguments": {"expression": "1"}}\n'
        '{"name": "web_fetch", "arguments": {"url": "u"}}\n```',
        [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})],
        "",
        None,
    ),
    (
        "fence-several-objects-commas",
        'Two calls:\n```\n{"name": "calculator", "arguments": {"expression": "1"}},\n'
        '{"name": "calculator", "arguments": {"expression": "2"}}\n```',
        [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})],
        "Two calls:",
        None,
    ),
    (
        "fence-object-then-prose-is-text",
        '```json\n{"name": "calculator", "arguments": {"expression": "1"}}\nthat is all\n```',
        [],
        '```json\n{"name": "calculator", "arguments": {"expression": "1"}}\nthat is all\n```',
        None,
    ),
    (
        "hermes-several-objects-in-one-block",
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "1"}}\n'
        '{"name": "web_fetch", "arguments": {"url": "u"}}\n</tool_call>',
        [("calculator", {"expression": "1"}), ("web_fetch", {"url": "u"})],
        "",
        None,
    ),
    (
        "bare-objects-one-per-line",
        '{"name": "calculator", "arguments": {"expression": "1"}}\n'
        '{"name": "calculator", "arguments": {"expression": "2"}}',
        [("calculator", {"expression": "1"}), ("calculator", {"expression": "2"})],
        "",
        None,
    ),
    # --- what looks like a call but is not one
    (
        "echoed-definition-in-tag",
        f"<tool_call>{ECHO}</tool_call>",
        [],
        "",
        "tool call 1 is the definition of calculator, not a call",
    ),
    ("echoed-definition-fenced-is-text", f"```json\n{ECHO}\n```", [], f"```json\n{ECHO}\n```", None),
    ("echoed-definition-bare-is-text", ECHO, [], ECHO, None),
    (
        "duplicate-name-keys",
        '<tool_call>{"name": "calculator", "name": "web_fetch", "arguments": {"url": "u"}}</tool_call>',
        [],
        "",
        'tool call 1 has the key "name" twice',
    ),
    (
        "duplicate-name-keys-fenced-is-text",
        '```json\n{"name": "calculator", "name": "web_fetch"}\n```',
        [],
        '```json\n{"name": "calculator", "name": "web_fetch"}\n```',
        None,
    ),
    (
        "close-tag-inside-a-string",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "</tool_call> and '
        '<tool_call> \\" </tool_call>"}}</tool_call>Done.',
        [("calculator", {"expression": '</tool_call> and <tool_call> " </tool_call>'})],
        "Done.",
        None,
    ),
    (
        "close-tag-after-an-unclosed-string",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "2+2}}</tool_call>Done.',
        [("calculator", {"expression": "2+2}}"})],
        "Done.",
        None,
    ),
    (
        "name-too-long",
        '<tool_call>{"name": "' + "n" * 5000 + '", "arguments": {}}</tool_call>',
        [],
        "",
        "tool call 1 has a name longer than 100 characters",
    ),
    (
        "lone-surrogate-in-arguments",
        '<tool_call>{"name": "calculator", "arguments": {"expression": "\\ud800"}}</tool_call>',
        [("calculator", {"expression": "\ufffd"})],
        "",
        None,
    ),
    (
        "arguments-take-their-declared-types",
        '<tool_call>{"name": "web_fetch", "arguments": {"url": 5, "max_chars": "500"}}</tool_call>',
        [("web_fetch", {"url": "5", "max_chars": 500})],
        "",
        None,
    ),
    (
        "arguments-that-cannot-be-converted-stay",
        '<tool_call>{"name": "web_fetch", "arguments": {"url": "u", "max_chars": "many"}}</tool_call>',
        [("web_fetch", {"url": "u", "max_chars": "many"})],
        "",
        None,
    ),
]
