"""The answer read off a reader's JSON reply while it streams."""

from __future__ import annotations

import json

from lector.webui.answer_draft import Draft, answer_so_far


def test_the_answer_field_is_read_as_far_as_it_is_written() -> None:
    reply = json.dumps({"answer": 'She said "go" \u2014 then left.\nDone.', "evidence": [1, 2]})
    assert answer_so_far(reply) == 'She said "go" \u2014 then left.\nDone.'
    assert [answer_so_far(reply[:n]) for n in (5, 12, 13, 22)] == ["", "", "S", "She said "]
    cut_escape = reply[: reply.index("\\u") + 4]
    assert answer_so_far(cut_escape) == 'She said "go" '  # a half-written \\u escape is left out
    assert answer_so_far('{"evidence": [1]}') == ""
    assert answer_so_far('{"answer":"a\\') == "a"


def test_a_draft_gives_only_what_is_new() -> None:
    draft = Draft()
    reply = json.dumps({"answer": "Otters hold hands [1].", "evidence": [1]})
    pieces = [draft.advance(reply[i : i + 5]) for i in range(0, len(reply), 5)]
    assert "".join(new for new, _ in pieces) == "Otters hold hands [1]."
    assert not any(replace for _, replace in pieces)


def test_a_compound_draft_shows_the_parts_without_their_marks() -> None:
    draft = Draft()
    reply = json.dumps({"answer": "(1) Smudge; (2) dusty grey", "evidence": [1]})
    shown = ""
    for i in range(0, len(reply), 3):
        new, replace = draft.advance(reply[i : i + 3])
        shown = new if replace else shown + new
        assert "(" not in shown
    assert shown == "Smudge; dusty grey"
