"""A play's speaker tags, and the line that heads the speech holding a quoted line."""

from lector.retrieval.answer_prompt import QUOTED_SPEAKER, answer_messages
from lector.retrieval.pointers import quoted_place
from lector.retrieval.reading_types import Evidence
from lector.retrieval.speakers import asks_who, speaker_line, speaker_tag
from lector.retrieval.types import Chunk

PLAY = """SCENE II. A room in the castle.

Enter the KING and QUEEN.

KING.
Welcome, dear friends. Our hasty sending
Hath brought you here to this our court.

FIRST PLAYER.
I will, my lord, and gladly:
Out of my heart I wish you well,
And so be it, for the night is long.

QUEEN: Good gentlemen, he hath much talk'd of you.
"""


def evidence(text: str, start: int = 0, end: int | None = None) -> Evidence:
    chunk = Chunk(doc_id="d", chunk_id=0, text=text, start=500, end=500 + len(text), source="play.txt")
    end = len(text) if end is None else end
    return Evidence(chunk=chunk, text=text[start:end], start=500 + start, end=500 + end)


def test_speaker_tags() -> None:
    assert speaker_tag("KING.") == "KING"
    assert speaker_tag("FIRST PLAYER.") == "FIRST PLAYER"
    assert speaker_tag("QUEEN: Good gentlemen") == "QUEEN"
    assert speaker_tag("LADY MACBETH  Out, damned spot!") == "LADY MACBETH"
    assert speaker_tag("HAMLET\tTo be, or not to be") == "HAMLET"
    for line in ("SCENE II. A room in the castle.", "Enter the KING and QUEEN.", "I will, my lord.", "II.", "ACT I"):
        assert speaker_tag(line) is None, line


def test_the_tag_heading_the_speech_is_found_lines_back() -> None:
    at = PLAY.index("so be it")
    start, line = speaker_line(PLAY, at) or (0, "")
    assert line == "FIRST PLAYER." and PLAY[start:].startswith("FIRST PLAYER.")
    assert speaker_line(PLAY, PLAY.index("much talk"))[1].startswith("QUEEN:")  # type: ignore[index]
    assert speaker_line(PLAY, PLAY.index("A room")) is None  # a heading, not a speech


def test_prose_has_no_speaker_line() -> None:
    prose = "NOTE\nThen let it be, said Ophelia, and went out.\nIt rained."
    assert speaker_line(prose, prose.index("let it be")) is None


def test_asks_who() -> None:
    assert asks_who('Which character speaks the line "so be it"?')
    assert asks_who('Who says "so be it"?')
    assert not asks_who('What comes after "so be it"?')


def test_the_speaker_line_outside_the_window_is_pointed_out() -> None:
    window = evidence(PLAY, PLAY.index("Out of my heart"), PLAY.index("QUEEN:"))
    place = quoted_place('Which character speaks the line "so be it"?', [window])
    assert place is not None and place.speaker == "FIRST PLAYER."
    assert place.after.startswith("for the night is long")
    prompt = answer_messages('Which character speaks the line "so be it"?', [window])[-1].content
    assert f'{QUOTED_SPEAKER} [1]: "FIRST PLAYER."\n' in prompt
    assert QUOTED_SPEAKER not in answer_messages('What follows "so be it"?', [window])[-1].content


def test_what_follows_a_quote_at_a_sentence_end_is_the_next_sentence() -> None:
    text = "There will be thousands. They will come. Others stay."
    place = quoted_place('What follows "There will be thousands"?', [evidence(text)])
    assert place is not None and place.after == "They will come."
    assert place.sentence == "There will be thousands."


def test_what_follows_is_read_past_the_end_of_a_window() -> None:
    text = "Intro here. There will be thousands who will thrill. Others stay."
    window = evidence(text, 0, text.index(" who"))
    place = quoted_place('What follows "There will be thousands"?', [window])
    assert place is not None and place.after == "who will thrill."
