"""Outbound text shaping: agent HTML to plain text, splitting at a channel's limit, page pushes.

ECE sends agent messages as `text/plain` or `text/html` (docs/protocols/ece.md, "Callback events");
SMS, Messenger, WhatsApp and Apple show plain text only, and each caps one message
(docs/protocols/channels.md, "Channels at a glance": SMS 1600, Messenger 2000, WhatsApp 4096
characters), so a longer reply goes out as several messages, cut where a reader would pause rather
than mid-word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser

# Newlines a block element asks for around itself: 2 is a paragraph break, 1 a line break.
_BLOCK_BREAKS = {
    **dict.fromkeys(("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr"), 2),
    **dict.fromkeys(("section", "article", "header", "footer", "figure", "address"), 2),
    **dict.fromkeys(("div", "tr", "ul", "ol", "dl", "dt", "dd", "main", "nav", "aside", "caption"), 1),
    **dict.fromkeys(("form", "fieldset", "details", "summary", "center", "figcaption"), 1),
}
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object"})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
_SENTENCE_END = frozenset(".!?…")
_CJK_SENTENCE_END = frozenset("\u3002\uff01\uff1f")  # ideographic / fullwidth stops: CJK has no space after them
_CLOSERS = frozenset("\"')]\u00bb\u201d\u2019")  # quotes and brackets that may follow a full stop
_ZWJ = "\u200d"


def html_to_text(html: str) -> str:
    """Plain text a customer reads as the agent meant it: paragraphs and <br> become newlines, links
    "text (url)", list items "- item" (ordered: "1. item"), entities unescaped, scripts and styles
    dropped, runs of whitespace collapsed (except inside <pre>)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextExtractor(HTMLParser):
    """Writes text lazily: a block boundary only records the newlines it wants, and they are written
    before the next text, so empty blocks and trailing breaks never pile up blank lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._last = "\n"  # the last character written; "\n" at the start so nothing leads with a space
        self._breaks = 0  # newlines wanted before the next text
        self._space = False  # whitespace seen since the last text
        self._skip = 0  # depth inside script / style / ...
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [next number] for <ol>, [] for <ul>
        self._links: list[tuple[str | None, int]] = []  # (href, index in _out where the link text starts)
        self._cells = 0  # cells seen in the current table row

    # -- writing ------------------------------------------------------------------------------------

    def _emit(self, text: str) -> None:
        if self._breaks and self._out:
            self._out.append("\n" * self._breaks)
            self._last = "\n"
        elif self._space and not self._last.isspace():
            self._out.append(" ")
            self._last = " "
        self._breaks = 0
        self._space = False
        if text:
            self._out.append(text)
            self._last = text[-1]

    def _want_break(self, newlines: int) -> None:
        self._breaks = max(self._breaks, newlines)
        self._space = False

    def text(self) -> str:
        lines = "".join(self._out).split("\n")
        kept: list[str] = []
        for line in (raw.rstrip() for raw in lines):
            if line or (kept and kept[-1]):  # at most one blank line in a row
                kept.append(line)
        return "\n".join(kept).strip("\n")

    # -- parser callbacks -----------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
            return
        if self._skip:
            return
        attributes = dict(attrs)
        if tag == "br":
            self._breaks = min(self._breaks + 1, 2)
            self._space = False
        elif tag == "li":
            self._want_break(1)
            self._emit(self._list_marker())
        elif tag in ("td", "th"):
            if self._cells:
                self._space = True
                self._emit("|")
                self._space = True
            self._cells += 1
        elif tag == "a":
            self._links.append((attributes.get("href"), len(self._out)))
        elif tag == "img":
            self._image(attributes)
        elif tag in _BLOCK_BREAKS:
            self._want_break(_BLOCK_BREAKS[tag])
            if tag in ("ul", "ol"):
                self._lists.append([_int(attributes.get("start"), 1)] if tag == "ol" else [])
            elif tag == "tr":
                self._cells = 0
            elif tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(self._skip - 1, 0)
            return
        if self._skip:
            return
        if tag == "a" and self._links:
            href, start = self._links.pop()
            self._end_link(href, "".join(self._out[start:]).strip())
        elif tag == "li":
            self._want_break(1)
        elif tag in _BLOCK_BREAKS:
            self._want_break(_BLOCK_BREAKS[tag])
            if tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            elif tag == "pre":
                self._pre = max(self._pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self._skip or not data:
            return
        if self._pre:
            self._emit(data)
            return
        words = data.split()
        if data[0].isspace():
            self._space = True
        if words:
            self._emit(" ".join(words))
        if data[-1].isspace():
            self._space = True

    # -- pieces ---------------------------------------------------------------------------------------

    def _list_marker(self) -> str:
        indent = "  " * max(len(self._lists) - 1, 0)
        if self._lists and self._lists[-1]:
            number = self._lists[-1][0]
            self._lists[-1][0] += 1
            return f"{indent}{number}. "
        return f"{indent}- "

    def _end_link(self, href: str | None, label: str) -> None:
        if not href or not href.strip().lower().startswith(_LINK_SCHEMES):
            return  # anchors, relative and javascript: links mean nothing outside the agent's page
        href = href.strip()
        if not label:
            self._emit(href)
        elif _same_target(label, href):
            return
        else:
            self._space = True
            self._emit(f"({href})")

    def _image(self, attributes: dict[str, str | None]) -> None:
        alt = " ".join((attributes.get("alt") or "").split())
        src = (attributes.get("src") or "").strip()
        shown = src if src.lower().startswith(("http://", "https://")) else ""
        if alt and shown:
            self._space = True
            self._emit(f"{alt} ({shown})")
        elif alt or shown:
            self._space = True
            self._emit(alt or shown)


def _same_target(label: str, href: str) -> bool:
    """Whether the link text already shows the URL ("example.com" for https://example.com/)."""

    def bare(value: str) -> str:
        value = value.strip().lower()
        for prefix in (*_LINK_SCHEMES, "www."):
            value = value.removeprefix(prefix)
        return value.rstrip("/")

    return bare(label) == bare(href)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


# -- splitting ------------------------------------------------------------------------------------------

_PARAGRAPH, _LINE, _SENTENCE, _WORD = range(4)


def split_text(text: str, limit: int | None) -> list[str]:
    """`text` as consecutive parts of at most `limit` characters (None: no limit).

    Invariants: every part is non-empty and at most `limit` long; the parts, in order, hold every
    non-whitespace character of `text` (only whitespace at a split point is dropped). A part ends at
    the strongest boundary in the second half of its room (paragraph, then line, then sentence, then
    word), else the last boundary of any kind; a word is cut only when it alone exceeds the limit,
    and never inside a surrogate pair, before a combining mark or around a joiner.
    """
    if not text.strip():
        return []
    if limit is None or len(text) <= limit:
        return [text]
    if limit < 1:
        raise ValueError("limit must be at least 1 character")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        end, resume = _split_point(rest, limit)
        if rest[:end].strip():
            parts.append(rest[:end])
        rest = rest[resume:]
    if rest.strip():
        parts.append(rest)
    return parts


def truncate_text(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` characters, on a word boundary when one lies in the second half,
    ending in `ellipsis` when anything was cut."""
    if len(text) <= limit:
        return text
    room = limit - len(ellipsis)
    if room < 1:
        return ellipsis[:limit]
    last = None
    for start, _, _ in _boundaries(text, room):
        last = start
    end = last if last is not None and last >= room // 2 else _safe_cut(text, room)
    return text[:end].rstrip() + ellipsis


def _split_point(text: str, limit: int) -> tuple[int, int]:
    """(end of this part, start of the next) for a text longer than `limit`."""
    strongest: dict[int, tuple[int, int]] = {}
    for start, resume, rank in _boundaries(text, limit):
        strongest[rank] = (start, resume)
    for rank in sorted(strongest):
        if strongest[rank][0] >= limit // 2:
            return strongest[rank]
    if strongest:
        return max(strongest.values())
    cut = _safe_cut(text, limit)
    return cut, cut


def _boundaries(text: str, limit: int) -> Iterator[tuple[int, int, int]]:
    """(start, resume, rank) of every place a part may end, in order: a whitespace run starting at
    1..limit (the part excludes the run, the next part starts after it), or the point just after a
    CJK full stop."""
    i = 1
    size = len(text)
    while i <= limit and i < size:
        char = text[i]
        if char.isspace() and not text[i - 1].isspace():
            end = i
            while end < size and text[end].isspace():
                end += 1
            yield i, end, _rank(text, i, end)
            i = end
            continue
        if text[i - 1] in _CJK_SENTENCE_END and not char.isspace():
            yield i, i, _SENTENCE
        i += 1


def _rank(text: str, start: int, end: int) -> int:
    newlines = text.count("\n", start, end)
    if newlines >= 2:
        return _PARAGRAPH
    if newlines == 1:
        return _LINE
    before = start - 1
    while before > 0 and text[before] in _CLOSERS:
        before -= 1  # 'He said "done."' ends a sentence too
    return _SENTENCE if text[before] in _SENTENCE_END else _WORD


def _safe_cut(text: str, index: int) -> int:
    """The nearest index at or before `index` that does not split a character as a reader sees it."""
    cut = index
    while cut > 1 and not _cuttable(text, cut):
        cut -= 1
    return cut if _cuttable(text, cut) else index


def _cuttable(text: str, i: int) -> bool:
    if i <= 0 or i >= len(text):
        return True
    before, after = text[i - 1], text[i]
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":
        return False  # a surrogate pair (text decoded with surrogatepass)
    if before == _ZWJ or after == _ZWJ:
        return False  # inside an emoji ZWJ sequence
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):
        return False  # a combining mark belongs to the character before it
    if "\ufe00" <= after <= "\ufe0f" or "\U0001f3fb" <= after <= "\U0001f3ff" or "\U000e0020" <= after <= "\U000e007f":
        return False  # variation selector, skin-tone modifier, emoji tag
    if _regional(before) and _regional(after):
        run = 0
        while i - run - 1 >= 0 and _regional(text[i - run - 1]):
            run += 1
        return run % 2 == 0  # flags are pairs of regional indicators: cut between pairs only
    return True


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def page_push_text(url: str, title: str | None = None) -> str:
    """How an agent's page push reads on a plain-text channel: the title, then the URL on a line of
    its own (channels turn a bare URL into a tappable link or a preview)."""
    url = url.strip()
    if not url:
        raise ValueError("a page push needs a URL")
    label = " ".join((title or "").split())
    if not label or _same_target(label, url):
        return url
    return f"{label}\n{url}"
