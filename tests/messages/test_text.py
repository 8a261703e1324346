"""Outbound text shaping: agent HTML to plain text, splitting at a channel's limit, page pushes."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector.messages.text import html_to_text, page_push_text, split_text, truncate_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("Hello", "Hello"),
        ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
        ("line one<br>line two<br/>line three", "line one\nline two\nline three"),
        ("a<br><br><br><br>b", "a\n\nb"),
        ("<div>one</div><div>two</div>", "one\ntwo"),
        ("<p>  lots   of\n\n   space\t here </p>", "lots of space here"),
        ("<p>Hi <b>there</b>,<i>you</i></p>", "Hi there,you"),
        ("Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#128512; caf&nbsp;au lait", "Tom & Jerry <3 été 😀 caf au lait"),
        ('See <a href="https://example.com/faq">our FAQ</a>.', "See our FAQ (https://example.com/faq)."),
        ('<a href="https://example.com/">example.com</a>', "example.com"),
        ('<a href="https://example.com/x"></a>', "https://example.com/x"),
        ('<a href="mailto:help@example.com">help@example.com</a>', "help@example.com"),
        ('<a href="javascript:alert(1)">click</a> <a href="/relative">here</a>', "click here"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<p>Steps:</p><ol><li>Open</li><li>Close</li></ol><p>Done</p>", "Steps:\n\n1. Open\n2. Close\n\nDone"),
        ("<ul><li>a<ul><li>a1</li></ul></li><li>b</li></ul>", "- a\n  - a1\n- b"),
        ("<script>alert('x')</script><style>p {color: red}</style>Visible", "Visible"),
        ("<html><head><title>T</title></head><body><h1>Title</h1><p>Body</p></body></html>", "Title\n\nBody"),
        (
            "<table><tr><th>Plan</th><th>Price</th></tr><tr><td>Basic</td><td>$5</td></tr></table>",
            "Plan | Price\nBasic | $5",
        ),
        ("<pre>  keep\n    this</pre>", "  keep\n    this"),
        ('<img src="https://cdn.example.com/a.png" alt="Diagram">', "Diagram (https://cdn.example.com/a.png)"),
        ("<p></p><p>   </p><div><br></div>", ""),
        ("unclosed <b>bold <p>para", "unclosed bold\n\npara"),
        ("2 < 3 and 5 > 4", "2 < 3 and 5 > 4"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("short", 10, ["short"]),
        ("anything", None, ["anything"]),
        ("", 10, []),
        ("   ", 10, []),
        ("First paragraph here.\n\nSecond one is here.", 30, ["First paragraph here.", "Second one is here."]),
        ("One sentence here. Another sentence follows", 30, ["One sentence here.", "Another sentence follows"]),
        ("aaaa bbbb cccc dddd eeee", 12, ["aaaa bbbb", "cccc dddd", "eeee"]),
        ("abcdefghijklmnop", 5, ["abcde", "fghij", "klmno", "p"]),
        (
            "Short. then a much longer clause without stops",
            20,
            ["Short. then a much", "longer clause", "without stops"],
        ),
        # a boundary in the first half of the room would make a tiny part: a weaker one further on wins
        (
            "Para one.\n\nPara two is longer than the rest of it",
            30,
            ["Para one.\n\nPara two is longer", "than the rest of it"],
        ),
        ('He said "done." Then he left the room', 20, ['He said "done."', "Then he left the", "room"]),
        ("これは文です。これも文です。", 8, ["これは文です。", "これも文です。"]),
    ],
)
def test_split_text_examples(text: str, limit: int | None, parts: list[str]) -> None:
    assert split_text(text, limit) == parts


@pytest.mark.parametrize(
    "text",
    [
        "e\u0301" * 20,  # e + combining acute accent
        "👨\u200d👩\u200d👧" * 6,  # family emoji: ZWJ sequences
        "👍🏽" * 10,  # skin-tone modifier
        "🇺🇸🇫🇷" * 6,  # flags: regional indicator pairs
        "\ud83d\ude00" * 10,  # a surrogate pair, as text decoded with surrogatepass
    ],
)
@pytest.mark.parametrize("limit", [5, 7, 11])  # the family emoji is 5 code points: it fits any of these
def test_split_text_never_cuts_a_character_in_two(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert "".join(parts) == text
    for part in parts:
        assert 0 < len(part) <= limit
    offset = 0
    for part in parts[:-1]:
        offset += len(part)
        before, after = text[offset - 1], text[offset]
        assert after not in "\u0301\u200d\U0001f3fd\ude00" and before != "\u200d", (part, limit)
        assert sum("\U0001f1e6" <= char <= "\U0001f1ff" for char in part) % 2 == 0, (part, limit)


def test_split_text_refuses_a_useless_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_text("hello", 0)


text_alphabet = st.one_of(
    st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "! ", "? ", "\t", "e\u0301", "👍🏽", "。", "\u00a0"]),
    st.characters(codec="utf-8"),
    st.text(alphabet="abcdefghij", min_size=1, max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(text_alphabet, max_size=80).map("".join), st.integers(min_value=1, max_value=60))
@example("a" * 100, 7)
@example("word " * 40, 9)
@example("x\n\n" * 30, 2)
def test_split_text_properties(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    for part in parts:
        assert part.strip(), "parts are never empty or whitespace only"
        assert len(part) <= limit
    # content is preserved: the parts appear in order in the text, and only whitespace lies between them
    position = 0
    for part in parts:
        found = text.find(part, position)
        assert found >= 0
        assert not text[position:found].strip()
        position = found + len(part)
    assert not text[position:].strip()
    assert "".join("".join(parts).split()) == "".join(text.split())


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("The quick brown fox jumps", 15, "The quick…"),
        ("Supercalifragilistic", 10, "Supercali…"),
        ("Hello world", 1, "…"),
    ],
)
def test_truncate_text(text: str, limit: int, expected: str) -> None:
    assert truncate_text(text, limit) == expected
    assert len(truncate_text(text, limit)) <= limit


@pytest.mark.parametrize(
    ("url", "title", "text"),
    [
        ("https://example.com/plans", "Our  plans", "Our plans\nhttps://example.com/plans"),
        (" https://example.com/plans ", None, "https://example.com/plans"),
        ("https://example.com/", "example.com", "https://example.com/"),
        ("https://example.com/a", "   ", "https://example.com/a"),
    ],
)
def test_page_push_text(url: str, title: str | None, text: str) -> None:
    assert page_push_text(url, title) == text


def test_page_push_needs_a_url() -> None:
    with pytest.raises(ValueError, match="URL"):
        page_push_text("  ", "Title")
