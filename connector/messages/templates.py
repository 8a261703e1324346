"""System-message templates: selection (entry-point override, else the locale's file) and sandboxed
rendering with an output cap.

Invariants: a broken operator template never crashes the relay nor shows the customer an internal
error; `render` logs it and falls back to the shipped file of the same locale. An empty template
(override or file) turns its message off. Templates see only the plain dicts of `MessageContext`.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import ChainableUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connector.config.model import EntryPoint
from connector.config.schemas import LOCALE_PATTERN, MESSAGE_TYPES, TEMPLATE_NAME
from connector.messages.context import VARIABLES, MessageContext
from connector.messages.text import truncate_text

log = logging.getLogger(__name__)

SUFFIX = ".txt.j2"
MAX_NUMBER_ARGUMENT = 100_000
"""Largest integer a template may pass to a function, method or filter (range, center, ...)."""
MAX_SIZE = 100_000
"""Longest string or list a template may build with +, ~, *, a filter or a method."""
LOOP_BUDGET = 10_000
"""Items all range() calls of one rendering may produce together (nested loops multiply)."""
_CACHE_SIZE = 512
_FORMAT_BOMB = re.compile(r"\d{5,}|%[^a-zA-Z%]*\*|\{[^{}]*\{")  # 5+ digit width, or width from an argument
LOCALES_RECHECK_SECONDS = 5.0
"""The longest a listing of the locale folders is kept, whatever the directory's mtime says."""

Overrides = Mapping[str, Mapping[str, str]]
"""Deployment-wide template overrides: locale → message type → text (Config.templates)."""

_loop_budget: ContextVar[list[int] | None] = ContextVar("message_template_loop_budget", default=None)
_V = TypeVar("_V")
_ATTRIBUTE_ACCESS: tuple[type[nodes.Getattr | nodes.Getitem], ...] = (nodes.Getattr, nodes.Getitem)
"""`x.name` and `x[key]` (typed as their union, so `find_all` yields either, not any expression)."""


class TemplateError(Exception):
    """A template an operator must fix: `message` says what is wrong, `line` where (1-based)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.message = message
        self.line = line


# -- the sandbox ----------------------------------------------------------------------------------------


def _refuse(what: str) -> SecurityError:
    return SecurityError(f"{what} is not allowed in a message template")


def _check_size(value: _V) -> _V:
    if isinstance(value, str | list | tuple) and len(value) > MAX_SIZE:
        raise _refuse(f"a text or list longer than {MAX_SIZE}")
    return value


def _check_numbers(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_NUMBER_ARGUMENT:
            raise _refuse(f"the argument {arg} (above {MAX_NUMBER_ARGUMENT})")


def _check_format(fmt: str) -> None:
    if _FORMAT_BOMB.search(fmt):
        raise _refuse("a format string with a width of 5+ digits or taken from an argument")


def _budgeted_range(*args: int) -> range:
    """range() drawing on the rendering's loop budget, so nested loops cannot spin for minutes."""
    items = range(*args)
    budget = _loop_budget.get()
    remaining = budget[0] if budget is not None else LOOP_BUDGET
    if len(items) > remaining:
        raise _refuse(f"looping over more than {LOOP_BUDGET} items")
    if budget is not None:
        budget[0] -= len(items)
    return items


def _guarded_filter(function: Callable[..., Any], *, formats: bool = False) -> Callable[..., Any]:
    """A built-in filter that refuses huge numeric arguments and huge results; `formats`: the piped
    value is a %-format string (the `format` filter)."""
    value_at = 1 if hasattr(function, "jinja_pass_arg") else 0  # pass_context filters get the context first

    @wraps(function)  # keeps jinja_pass_arg, so Jinja still passes the context
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args[value_at + 1 :], *kwargs.values()))
        if formats and len(args) > value_at and isinstance(args[value_at], str):
            _check_format(args[value_at])
        return _check_size(function(*args, **kwargs))

    return guarded


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles `~` to a size-checked join (a loop doubling a string must stop, not eat the memory)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_str_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _MessageSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, plus: unsafe attributes fail at once (the stock sandbox renders
    them as empty text, hiding an escape attempt), and the cheap ways to exhaust CPU or memory
    (huge ranges, `**`, repeated or concatenated strings, wide format strings) are refused."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator

    def __init__(self) -> None:
        # ChainableUndefined: parts of the context are None by design (no agent before assignment, no
        # wait estimate), so `{{ agent.name }}` and `{{ queue.wait_minutes.x }}` must render empty
        # rather than fail and replace the operator's wording with the default. Misspelt top-level
        # names are caught by `validate` instead.
        super().__init__(
            autoescape=False,  # plain text for SMS / chat, never HTML
            undefined=ChainableUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.globals.pop("lipsum", None)  # lipsum(n=10**5) writes megabytes of Latin
        self.globals["range"] = _budgeted_range
        self.filters = {name: _guarded_filter(f, formats=name == "format") for name, f in self.filters.items()}

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise _refuse(f"the attribute {attribute!r}")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int) and len(seq) * times > MAX_SIZE:
                    raise _refuse(f"a text or list longer than {MAX_SIZE}")
        elif operator == "+":
            sized = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
            if sized and len(left) + len(right) > MAX_SIZE:
                raise _refuse(f"a text or list longer than {MAX_SIZE}")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_numbers((*args, *kwargs.values()))
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped

    @staticmethod
    def concat(values: Iterable[str]) -> str:
        """Joins `{% set %}` blocks and macro bodies (Jinja's own hook), size-checked."""
        return _check_size("".join(values))

    @staticmethod
    def guarded_str_join(values: tuple[Any, ...]) -> str:
        """What `~` compiles to (see _GuardedCodeGenerator)."""
        return _check_size(str_join(values))


def _check_power(base: Any, exponent: Any) -> None:
    numbers = isinstance(base, int) and isinstance(exponent, int)
    if numbers and abs(base) > 1 and exponent > 0 and exponent * math.log2(abs(base)) > 64:
        raise _refuse("a power above 2**64")


@contextmanager
def _loop_budget_scope() -> Iterator[None]:
    token = _loop_budget.set([LOOP_BUDGET])
    try:
        yield
    finally:
        _loop_budget.reset(token)


def _template_line(exc: BaseException) -> int | None:
    """The template line of a render error: Jinja rewrites tracebacks so template frames carry the
    template's own line numbers under the file name "<template>"."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# -- selection and rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Choice:
    source: str
    where: str
    locale: str
    override: bool


class MessageTemplates:
    """The templates of one `message_templates/` directory, with per-entry-point overrides.

    Compiled templates are cached by source text (a config reload that changes an override simply
    compiles the new text); files are re-read when their mtime changes.
    """

    def __init__(self, directory: Path, *, output_cap: int = 2000, default_locale: str = "en") -> None:
        if output_cap < 2:
            raise ValueError("output_cap must be at least 2 characters")
        self.directory = Path(directory)
        self.output_cap = output_cap
        self.default_locale = default_locale
        self._env = _MessageSandbox()
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, Template | TemplateError] = OrderedDict()
        self._files: dict[Path, tuple[int, str]] = {}
        self._locales: tuple[int, float, list[str]] | None = None

    # -- selection ----------------------------------------------------------------------------------

    def locales(self) -> list[str]:
        """Locale folders present (names like en, es, pt_BR), sorted. Every system message asks, so
        the listing is kept until the directory's mtime moves (a folder added, removed or renamed)
        or LOCALES_RECHECK_SECONDS pass (a filesystem whose mtime ticks by the second)."""
        try:
            mtime = self.directory.stat().st_mtime_ns
        except OSError:
            return []
        listed = self._locales
        if listed is None or listed[0] != mtime or time.monotonic() - listed[1] >= LOCALES_RECHECK_SECONDS:
            try:
                found = sorted(p.name for p in self.directory.iterdir() if p.is_dir() and LOCALE_PATTERN.match(p.name))
            except OSError:  # not a directory
                found = []
            listed = self._locales = (mtime, time.monotonic(), found)
        return list(listed[2])

    def source(
        self,
        message_type: str,
        locale: str | None,
        entry_point: EntryPoint | None = None,
        overrides: Overrides | None = None,
    ) -> tuple[str, str]:
        """(template source, where it comes from), first found of: the entry point's override for the
        locale, its override for every locale, the deployment override of the locale (`overrides`,
        made in the UI), the locale's file, the same two for the default locale; else ("", "no file
        ...") which is off."""
        choice = self._choose(message_type, locale, entry_point, overrides)
        return choice.source, choice.where

    def default_source(self, message_type: str, locale: str) -> tuple[str, str]:
        """The shipped file's text for `locale` (what "reset to default" restores)."""
        choice = self._file_choice(message_type, locale, None)
        return choice.source, choice.where

    def _choose(
        self,
        message_type: str,
        locale: str | None,
        entry_point: EntryPoint | None,
        overrides: Overrides | None,
        *,
        flow: bool = False,
    ) -> _Choice:
        """`flow`: `message_type` is a flow's own template (`question: ask_order_number`), any file
        of the locale folders, rather than one of the system messages."""
        if message_type not in MESSAGE_TYPES and not (flow and TEMPLATE_NAME.match(message_type)):
            raise ValueError(f"unknown message type {message_type!r}: use one of {', '.join(MESSAGE_TYPES)}")
        available = sorted({*self.locales(), *(overrides or {})})
        resolved = resolve_locale(
            locale, entry_point.default_locale if entry_point else None, available, fallback=self.default_locale
        )
        if entry_point is not None:
            localized = entry_point.locale_messages.get(resolved, {})
            if message_type in localized:
                where = f"entry point {entry_point.name} override ({resolved})"
                return _Choice(localized[message_type], where, resolved, override=True)
            if message_type in entry_point.messages:
                where = f"entry point {entry_point.name} override"
                return _Choice(entry_point.messages[message_type], where, resolved, override=True)
        return self._file_choice(message_type, resolved, overrides)

    def _file_choice(self, message_type: str, locale: str, overrides: Overrides | None) -> _Choice:
        tried = []
        for candidate in dict.fromkeys((locale, self.default_locale)):
            custom = (overrides or {}).get(candidate, {}).get(message_type)
            if custom is not None:
                return _Choice(custom, f"deployment override ({candidate})", locale, override=True)
            where = f"{self.directory.name}/{candidate}/{message_type}{SUFFIX}"
            text = self._read(self.directory / candidate / f"{message_type}{SUFFIX}")
            if text is not None:
                return _Choice(text, where, locale, override=False)
            tried.append(where)
        return _Choice("", f"no file {' nor '.join(tried)}", locale, override=False)

    def _read(self, path: Path) -> str | None:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._files.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, path.read_text(encoding="utf-8"))
            self._files[path] = cached
        return cached[1]

    # -- rendering ----------------------------------------------------------------------------------

    def render(
        self,
        message_type: str,
        context: MessageContext,
        *,
        locale: str | None,
        entry_point: EntryPoint | None,
        overrides: Overrides | None = None,
        flow: bool = False,
    ) -> str | None:
        """The text to send, or None when the message is turned off (empty template, or one that
        renders to whitespace). A failing override falls back to the locale's file; a failing file
        gives None. Errors are logged for the operator, never raised. `flow`: a flow's template."""
        choice = self._choose(message_type, locale, entry_point, overrides, flow=flow)
        attempts = [choice]
        if choice.override:  # fall back layer by layer: deployment override, then the shipped file
            for fallback in (
                self._file_choice(message_type, choice.locale, overrides),
                self._file_choice(message_type, choice.locale, None),
            ):
                if fallback.where not in {a.where for a in attempts}:
                    attempts.append(fallback)
        for attempt in attempts:
            if not attempt.source.strip():
                return None
            try:
                return self.render_source(attempt.source, context) or None
            except TemplateError as exc:
                log.error(
                    "system message template failed; %s",
                    "sending the default instead" if attempt is not attempts[-1] else "message not sent",
                    extra={
                        "message_type": message_type,
                        "template": attempt.where,
                        "line": exc.line,
                        "error": exc.message,
                    },
                )
        return None

    def render_source(self, source: str, context: MessageContext) -> str:
        """Render `source` as the relay would (for previews): stripped, capped at `output_cap` on a
        word boundary. "" means the message would be off. Raises TemplateError with the line."""
        template = self._compile(source)
        chunks: list[str] = []
        size = 0
        enough = self.output_cap * 2 + 256  # stop a runaway loop early; the cap cuts the rest anyway
        try:
            with _loop_budget_scope():
                for chunk in template.generate(context.as_dict()):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > enough:
                        break
        except SecurityError as exc:
            raise TemplateError(str(exc), _template_line(exc)) from None
        except Exception as exc:  # any render error is the template's: report it, never crash the relay
            raise TemplateError(_describe(exc), _template_line(exc)) from None
        return truncate_text("".join(chunks).strip(), self.output_cap)

    def validate(self, source: str) -> None:
        """Raise TemplateError (with the line) for a syntax error, an unknown variable or a forbidden
        attribute; what the UI and the API check before saving an override."""
        self._compile(source)
        tree = self._env.parse(source)
        allowed = set(VARIABLES) | set(self._env.globals)
        unknown = meta.find_undeclared_variables(tree) - allowed
        if unknown:
            name_node = min(
                (n for n in tree.find_all(nodes.Name) if n.name in unknown), key=lambda n: n.lineno, default=None
            )
            name = name_node.name if name_node else sorted(unknown)[0]
            raise TemplateError(
                f"unknown variable {name!r}: use one of {', '.join(VARIABLES)}",
                name_node.lineno if name_node else None,
            )
        for node in tree.find_all(_ATTRIBUTE_ACCESS):
            attr = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
            if isinstance(attr, str) and attr.startswith("_"):
                raise TemplateError(str(_refuse(f"the attribute {attr!r}")), node.lineno)

    def _compile(self, source: str) -> Template:
        with self._lock:
            cached = self._compiled.get(source)
            if cached is not None:
                self._compiled.move_to_end(source)
        if cached is None:
            try:
                cached = self._env.from_string(source)
            except TemplateSyntaxError as exc:
                cached = TemplateError(exc.message or "syntax error", exc.lineno)
            except Exception as exc:  # e.g. a SecurityError while folding constants
                cached = TemplateError(_describe(exc), _template_line(exc))
            with self._lock:
                self._compiled[source] = cached
                while len(self._compiled) > _CACHE_SIZE:
                    self._compiled.popitem(last=False)
        if isinstance(cached, TemplateError):
            raise TemplateError(cached.message, cached.line)
        return cached


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SecurityError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "a macro calls itself too deeply"
    return f"{type(exc).__name__}: {exc}"


# -- locales ----------------------------------------------------------------------------------------------


def resolve_locale(
    customer_locale: str | None, entry_point_default: str | None, available: Iterable[str], *, fallback: str = "en"
) -> str:
    """The available locale to write in: the customer's (exact, then without its region, then any
    locale of the same language), else the entry point's default (the same way), else `fallback`.

    Channels spell locales differently (Messenger "en_US", in-app "pt-BR", "es-419", "en_US.UTF-8");
    they are normalised before matching, and the answer is the folder name as spelled on disk.
    """
    by_key = {_normalise(name).lower(): name for name in available}
    for wanted in (customer_locale, entry_point_default):
        found = _match(wanted, by_key)
        if found is not None:
            return found
    return by_key.get(_normalise(fallback).lower(), fallback)


def _normalise(locale: str) -> str:
    """ "pt-br" → "pt_BR", "zh-hant-tw" → "zh_Hant_TW", "en_US.UTF-8" → "en_US"."""
    code = locale.strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_")
    language, *rest = code.split("_")
    subtags = [s.title() if len(s) == 4 else s.upper() for s in rest if s]
    return "_".join([language.lower(), *subtags])


def _match(wanted: str | None, by_key: dict[str, str]) -> str | None:
    if not wanted or not wanted.strip():
        return None
    parts = _normalise(wanted).lower().split("_")
    for end in range(len(parts), 0, -1):
        found = by_key.get("_".join(parts[:end]))
        if found is not None:
            return found
    same_language = sorted(key for key in by_key if key.split("_")[0] == parts[0])
    return by_key[same_language[0]] if same_language else None
