"""What a browser would submit for a page's form, unchanged: the `name=value` pairs of its inputs
(checkboxes and radios only when checked), selects (the selected option, else the first) and
textareas. Tests post it back to prove a save through the form keeps what the page showed and
what it did not."""

from __future__ import annotations

from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._chosen = False
        self._option: dict[str, str | None] | None = None
        self._option_text = ""
        self._textarea: str | None = None
        self._textarea_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.inside = (found.get("method") or "").lower() == "post" and (found.get("action") or "") == self.action
            return
        if not self.inside:
            return
        name = found.get("name")
        if tag == "input" and name:
            kind = (found.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if "checked" in found:
                    self.fields[name] = found.get("value") or "on"
            elif kind not in ("submit", "button", "file"):
                self.fields[name] = found.get("value") or ""
        elif tag == "select" and name:
            self._select, self._first_option, self._chosen = name, None, False
        elif tag == "option" and self._select is not None:
            self._option, self._option_text = found, ""
        elif tag == "textarea" and name:
            self._textarea, self._textarea_text = name, ""

    def handle_data(self, data: str) -> None:
        if self._option is not None:
            self._option_text += data
        if self._textarea is not None:
            self._textarea_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "option" and self._option is not None and self._select is not None:
            value = self._option.get("value")
            value = self._option_text.strip() if value is None else value
            if self._first_option is None:
                self._first_option = value
            if "selected" in self._option and not self._chosen:
                self.fields[self._select], self._chosen = value, True
            self._option = None
        elif tag == "select" and self._select is not None:
            if not self._chosen and self._first_option is not None:
                self.fields[self._select] = self._first_option
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields[self._textarea] = self._textarea_text.removeprefix("\n")
            self._textarea = None


def form_fields(page: str, action: str = "") -> dict[str, str]:
    """The fields of the page's POST form with this `action` ("": the form that posts to the page
    itself), as a browser sends them."""
    parser = _Form(action)
    parser.feed(page)
    assert parser.fields, f"no POST form with action {action!r} on the page"
    return parser.fields
