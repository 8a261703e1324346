"""Configuration as a provisioning file and back: export to `entrypoints/*.yaml` YAML, import with
validation and a diff (docs/architecture.md, "Configuration concepts", "Security").

Invariants:
- An export never holds a secret in clear: each secret field is written as an environment reference
  `${NAME_FIELD}` (e.g. `${MYINTEGRATION_CLIENT_SECRET}`), so the file is a valid provisioning file
  for a deployment that sets those variables, and `check-config` loads it.
- An import writes nothing until it is applied, and applying re-validates the same text: the plan
  an operator saw is recomputed, never trusted from the browser. One bad item blocks the whole
  import (problems name the item and the field, as check-config does), and one check finds every
  problem of the file: each item's own, unknown references beside them, and a top level that is not
  a mapping said in words. While a problem blocks it, nothing is said to be added (`summary`).
- Items a provisioning file defines are read-only: an import shows them unchanged when equal and
  refuses them otherwise; it never overrides a file.
- `${ENV}` references resolve from the environment as the loader does (a missing variable is an
  error naming it), but only in secret fields: a reference elsewhere would let an import copy any
  variable of the server's environment into a field that the UI shows.
- A secret sent back masked (MASK) keeps the stored secret of an item that exists; on a new item
  it is an error, never a stored "********".
- The `finesse:` section imports like an item when no provisioning file defines it: added, changed
  (with its fields) or unchanged against the one made in the UI / API. `default_rule` stays a
  provisioning-file section: an import shows it unchanged when equal and refuses it otherwise.
- Hybrid Chat agents (`hybrid_agents`, by login, case-insensitively) import like items. An export is
  a backup: a local agent made in the UI / API is written with its `password_hash` (never a clear
  password, which the connector does not keep), so the file restores the same login; a provisioned
  agent's clear `password` is written as `${<LOGIN>_PASSWORD}`. An imported clear password is hashed
  when it is written; a password left out (or masked) keeps the stored hash.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import yaml
from marshmallow import ValidationError
from werkzeug.security import check_password_hash

from connector.config import model, raw, schemas
from connector.config.loader import (
    ENV_REFERENCE,
    NO_FINESSE_AGENT_PROBLEM,
    ConfigProblem,
    rule_reference_errors,
    skill_spelling_problems,
    top_level_problem,
)
from connector.config.overrides import (
    AGENTS,
    KEEP_PASSWORD,
    KINDS,
    MASK,
    SECRET_FIELDS,
    ConfigConflict,
    ConfigInvalid,
    ConfigOverrides,
    NotFound,
    agent_key,
    entry_point_flow_errors,
    flatten_errors,
    get_path,
    item_key,
    keep_secrets,
    secret_paths,
    set_path,
    validate,
)
from connector.config.overrides import SINGLETONS as UI_SINGLETONS

SINGLETONS = ("default_rule", "finesse")
"""Sections a deployment has at most one of; those of UI_SINGLETONS (finesse) may also be made in the UI
or API, and an import writes them there; the others live in the provisioning files only."""
FINESSE_SECRETS = ("admin_user", "admin_password")
ADD, CHANGE, UNCHANGED, REFUSED = "add", "change", "unchanged", "refused"
OUTCOMES = {ADD: "to add", CHANGE: "to change", UNCHANGED: "unchanged", REFUSED: "refused"}
"""Each action of a plan in words (a preview: nothing is done yet)."""
EXPORT_KINDS = (*KINDS, AGENTS)
"""What can be exported one kind (or one item) at a time: hybrid agents by login."""
AGENT_SECRETS = ("password",)
HYBRID_EMPTY = ("base_url", "callback_auth")
"""ECE's fields a Hybrid Chat integration's YAML shape carries empty: left out of an export."""


# -- export -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Export:
    text: str
    """The YAML document, header comment included."""
    variables: list[str]
    """Environment variables the file refers to (set them where it is loaded)."""
    items: int
    filename: str


def env_name(owner: str, path: str) -> str:
    """`MyECE`, `callback_auth.token` → `MYECE_CALLBACK_AUTH_TOKEN` (a valid variable name)."""
    name = re.sub(r"[^A-Za-z0-9]+", "_", f"{owner}_{path}").strip("_").upper()
    return name if re.match(r"[A-Z_]", name) else f"CC_{name}"


def export(config: model.Config, kind: str | None = None, name: str | None = None) -> Export:
    """The whole configuration (kind None), every item of a kind, or one item (`name`; assets are
    named `channel/name`, hybrid agents by login) as a provisioning file. Raises NotFound, or
    ValueError for a bad kind."""
    if kind is not None and kind not in EXPORT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EXPORT_KINDS)}")
    if name is not None and kind is None:
        raise ValueError("name needs a kind")
    sections: dict[str, Any] = {}
    variables: list[str] = []
    asset_names = [a.name for a in config.assets]
    for section in KINDS if kind is None else tuple(k for k in KINDS if k == kind):
        items = list(_items(config, section))
        if name is not None:
            items = [i for i in items if item_key(section, i) == name]
            if not items:
                raise NotFound(f"no {section[:-1]} {name!r}")
        if items:
            sections[section] = [
                _with_references(section, _exported(section, i), _owner(section, i, asset_names), variables)
                for i in items
            ]
    if kind in (None, AGENTS):
        agents = [a for a in config.hybrid_agents if name is None or agent_key(a.login) == agent_key(name)]
        if name is not None and not agents:
            raise NotFound(f"no hybrid agent {name!r}")
        if agents:
            sections[AGENTS] = [_agent_export(a, variables) for a in agents]
    if kind is None:
        if config.default_rule is not None:
            sections["default_rule"] = {k: v for k, v in asdict(config.default_rule).items() if k != "source"}
        if config.finesse is not None:
            finesse = {k: v for k, v in asdict(config.finesse).items() if v is not None and k != "source"}
            for secret in FINESSE_SECRETS:
                if finesse.get(secret):
                    finesse[secret] = _reference(env_name("finesse", secret), variables)
            sections["finesse"] = finesse
    what = "the whole configuration" if kind is None else (f"{kind[:-1]} {name}" if name else f"all {kind}")
    count = sum(len(v) if isinstance(v, list) else 1 for v in sections.values())
    body = yaml.safe_dump(sections, sort_keys=False, allow_unicode=True, default_flow_style=False) if sections else ""
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "-", "connector" if kind is None else (name or kind)).strip("-") + ".yaml"
    header = _header(what, variables)
    if any("password_hash" in a for a in sections.get(AGENTS, [])):
        header += "# Local agents' passwords are written as their hash (password_hash), never in clear.\n"
    return Export(header + body, variables, count, filename)


def _exported(kind: str, item: Any) -> dict[str, Any]:
    """An item's YAML shape for a file; a Hybrid Chat integration without ECE's empty fields (an empty
    base_url would not load)."""
    data = raw.of(kind, item)
    if kind == "integrations" and item.type == "hybrid":
        data = {k: v for k, v in data.items() if not (k in HYBRID_EMPTY and v in ("", None, {"type": "none"}))}
    return data


def agent_shape(agent: model.HybridAgent) -> dict[str, Any]:
    """A hybrid agent's YAML shape without its password (for an export and a diff)."""
    data: dict[str, Any] = {"login": agent.login}
    if agent.name:
        data["name"] = agent.name
    data["skills"] = list(agent.skills)
    if agent.max_chats is not None:
        data["max_chats"] = agent.max_chats
    return data


def _agent_export(agent: model.HybridAgent, variables: list[str]) -> dict[str, Any]:
    """A clear password (provisioned) as `${LOGIN_PASSWORD}`; a hash (made here) as it is: an export is a
    backup that restores the agent's login, and a hash is not the password."""
    data = agent_shape(agent)
    if agent.password:
        data["password"] = _reference(env_name(agent.login, "password"), variables)
    elif agent.password_hash:
        data["password_hash"] = agent.password_hash
    return data


def _items(config: model.Config, kind: str) -> tuple[Any, ...]:
    return {
        "flows": config.flows,
        "integrations": config.integrations,
        "assets": config.assets,
        "rules": config.rules,
    }[kind]


def _owner(kind: str, item: Any, asset_names: list[str]) -> str:
    """Whose variable a secret is: the item's name, with the channel where two assets share it."""
    if kind == "assets" and asset_names.count(item.name) > 1:
        return f"{item.channel}_{item.name}"
    return str(item.name)


def _with_references(kind: str, data: dict[str, Any], owner: str, variables: list[str]) -> dict[str, Any]:
    for path in secret_paths(kind, data):
        if get_path(data, path):
            set_path(data, path, _reference(env_name(owner, path), variables))
    return data


def _reference(variable: str, variables: list[str]) -> str:
    if variable not in variables:
        variables.append(variable)
    return f"${{{variable}}}"


def _header(what: str, variables: list[str]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# Channel connector configuration: {what}, exported {when}.",
        "# A provisioning file: put it in entrypoints/ and check it with `python -m connector check-config`.",
    ]
    if variables:
        lines += [
            "# Secrets are never exported in clear: each is an environment reference ${NAME}.",
            "# Set these variables where this file is loaded (or replace the references):",
            *(f"#   {v}" for v in variables),
        ]
    return "\n".join(lines) + "\n"


# -- import -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What an import would do to one item."""

    kind: str
    key: str
    action: str
    """add | change | unchanged | refused"""
    fields: tuple[str, ...] = ()
    """For a change: the dotted fields that differ (secrets named, never shown)."""
    reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """The item to store: references resolved, masked secrets replaced by the stored ones."""


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    problems: list[ConfigProblem] = field(default_factory=list)
    rule_order: list[str] = field(default_factory=list)
    """The imported rules in file order (they keep this order relative to each other)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.action in (ADD, CHANGE)]

    def count(self, action: str) -> int:
        return sum(c.action == action for c in self.changes)


class ImportBlocked(Exception):
    """The import has problems (`problems`), or a write failed midway (`written` says what stuck)."""

    def __init__(self, problems: list[ConfigProblem], written: list[Change] | None = None) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.written = written or []


def plan(
    text: str,
    current: model.Config,
    provisioned: model.Config,
    store: ConfigOverrides,
    env: Mapping[str, str] | None = None,
    label: str = "import",
) -> Plan:
    """Validate `text` (a provisioning file) and compare it with the configuration; writes nothing."""
    env = os.environ if env is None else env
    result = Plan()

    def problem(item: str, field_name: str | None, message: str) -> None:
        result.problems.append(ConfigProblem(label, item, field_name, message))

    sections = _parse(text, problem)
    if sections is None:
        return result
    stored = {kind: store.raw_items(kind) for kind in KINDS}
    failed: dict[str, set[str]] = {kind: set() for kind in KINDS}
    """The keys of the file's items that have problems of their own: a rule pointing at one is not
    told again that it does not exist."""
    rules_to_check: list[tuple[str, Mapping[str, Any]]] = []
    """The file's rules that would be written, or that failed: (label, raw), for the reference check."""
    for kind in KINDS:
        seen: set[str] = set()
        for index, data in enumerate(sections[kind]):
            change = _plan_item(kind, index, data, stored[kind], provisioned, env, seen, problem)
            if change is None and isinstance(data, dict):
                failed[kind].add(item_key(kind, data))
                if kind == "rules":
                    rules_to_check.append((_label(kind, index, data), data))
            if change is not None:
                result.changes.append(change)
                if kind == "rules" and change.action != REFUSED:
                    result.rule_order.append(change.key)
                if kind == "rules" and change.action in (ADD, CHANGE):
                    rules_to_check.append((_label(kind, index, data), change.raw))
    for section in SINGLETONS:
        if sections[section] is not None:
            change = _plan_singleton(section, sections[section], provisioned, store, env, problem)
            if change is not None:
                result.changes.append(change)
    finesse_after = current.finesse is not None or any(c.kind == "finesse" and c.action == ADD for c in result.changes)
    stored_agents = store.raw_items(AGENTS)
    seen_logins: set[str] = set()
    for index, data in enumerate(sections[AGENTS]):
        change = _plan_agent(index, data, stored_agents, provisioned, env, seen_logins, finesse_after, problem)
        if change is not None:
            result.changes.append(change)
    # Beside the items' own problems, so one check shows every problem of the file. A rule whose
    # references fail has a problem of its own: it leaves the changes, as an invalid item does.
    broken = _cross_check(result.writes, current, rules_to_check, failed, problem)
    result.changes = [c for c in result.changes if not (c.kind == "rules" and c.key in broken)]
    result.rule_order = [name for name in result.rule_order if name not in broken]
    _cross_check_skills(result.writes, current, problem)
    if result.ok and not result.changes:
        problem("file", None, "nothing to import: the file has no integrations, assets, rules or hybrid agents")
    return result


def counts(planned: Plan, separator: str = ", ") -> str:
    """What the valid items of the file would do: `1 to add, 0 to change, 0 unchanged, 0 refused`."""
    return separator.join(f"{planned.count(action)} {words}" for action, words in OUTCOMES.items())


def summary(planned: Plan) -> str:
    """The plan in one sentence (the API's `summary`; the page says the same in its parts). While
    problems block the import it never says an item is added: what the valid items would do waits for
    the fixes."""
    if planned.ok:
        return counts(planned) if planned.writes else f"{counts(planned)}: nothing to write"
    waiting = f"; once they are fixed: {counts(planned)}" if planned.changes else ""
    return f"{len(planned.problems)} problem(s): nothing can be imported until they are fixed{waiting}"


def applied_summary(planned: Plan, written: int) -> str:
    """What an applied import did, in words (the page's message and the API's `summary`)."""
    return f"Imported: {written} item(s) written, {planned.count(UNCHANGED)} unchanged."


def apply(planned: Plan, store: ConfigOverrides, provisioned: model.Config) -> list[Change]:
    """Write a plan without problems through the config store (flows, integrations, assets, then
    rules: KINDS' order, so references resolve), then keep the file's rule order. Returns what was written."""
    if not planned.ok:
        raise ImportBlocked(planned.problems)
    written: list[Change] = []
    for kind in KINDS:
        for change in (c for c in planned.writes if c.kind == kind):
            try:
                store.save(kind, change.raw, provisioned, create=change.action == ADD)
            except (ConfigInvalid, ConfigConflict, NotFound) as exc:
                detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in getattr(exc, "errors", {}).items()) or str(exc)
                item = f"{kind} ({change.key!r})"
                raise ImportBlocked([ConfigProblem("import", item, None, detail.strip("'\""))], written) from exc
            written.append(change)
    for change in (c for c in planned.writes if c.kind in UI_SINGLETONS):
        try:
            store.save_singleton(change.kind, change.raw, provisioned)
        except (ConfigInvalid, ConfigConflict) as exc:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in getattr(exc, "errors", {}).items()) or str(exc)
            raise ImportBlocked([ConfigProblem("import", change.kind, None, detail.strip("'\""))], written) from exc
        written.append(change)
    for change in (c for c in planned.writes if c.kind == AGENTS):
        try:
            store.save_agent(change.raw, provisioned, create=change.action == ADD)
        except (ConfigInvalid, ConfigConflict, NotFound) as exc:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in getattr(exc, "errors", {}).items()) or str(exc)
            item = f"{AGENTS} ({change.key!r})"
            raise ImportBlocked([ConfigProblem("import", item, None, detail.strip("'\""))], written) from exc
        written.append(change)
    if planned.rule_order:
        merged = store.merged(provisioned)
        order = [r.name for r in merged.rules]
        new_order = rule_order(order, planned.rule_order)
        if new_order != store.rule_order():
            store.set_rule_order(new_order, merged)
    return written


def rule_order(current: list[str], imported: Iterable[str]) -> list[str]:
    """`current` with the imported rules' places refilled in the file's order: other rules keep
    their places, the imported ones keep the order the file gives them."""
    wanted = [name for name in dict.fromkeys(imported) if name in current]
    places = sorted(current.index(name) for name in wanted)
    order = list(current)
    for place, name in zip(places, wanted, strict=True):
        order[place] = name
    return order


def _parse(text: str, problem: Any) -> dict[str, Any] | None:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem(f"line {mark.line + 1}" if mark else "file", None, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return None
    if document is None:
        problem("file", None, "the file is empty: paste or upload a provisioning file (entrypoints/*.yaml)")
        return None
    if (wrong := top_level_problem(document)) is not None:
        problem("top level", None, wrong)
        return None
    file_schema = schemas.FileSchema()
    try:
        # marshmallow's load is unannotated; FileSchema (no post_load) loads a mapping to a dict.
        sections: dict[str, Any] = file_schema.load(document)
        return sections
    except ValidationError as exc:
        for field_name, messages in flatten_errors(exc.messages).items():
            for message in messages:
                problem("top level", field_name if field_name != "_schema" else None, message)
        # The sections that loaded are still checked, so their problems are shown with these.
        defaults = {
            name: field.load_default() if callable(field.load_default) else field.load_default
            for name, field in file_schema.fields.items()
        }
        loaded: dict[str, Any] = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return {**defaults, **{k: v for k, v in loaded.items() if k in defaults}}


def _label(kind: str, index: int, data: Any) -> str:
    """How a problem names an item of the file: `rules[0] ('r1')`."""
    name = data.get("name") if isinstance(data, dict) else None
    return f"{kind}[{index}]" + (f" ({name!r})" if name else "")


def _plan_item(
    kind: str,
    index: int,
    data: Any,
    stored: dict[str, dict[str, Any]],
    provisioned: model.Config,
    env: Mapping[str, str],
    seen: set[str],
    problem: Any,
) -> Change | None:
    label = _label(kind, index, data)
    if not isinstance(data, dict):
        problem(label, None, "an item must be a mapping")
        return None
    found = _reference_problems(data, env, secret_paths(kind, data), label, problem)
    resolved = _resolve(kind, data, env)
    key = item_key(kind, resolved)
    if key in seen:
        problem(label, "name", "repeated in this file")
        return None
    seen.add(key)
    source = next((i for i in _items(provisioned, kind) if item_key(kind, i) == key), None)
    existing = stored.get(key)
    if existing is not None:
        resolved = keep_secrets(kind, existing, resolved)
    elif source is not None:
        resolved = keep_secrets(kind, raw.of(kind, source), resolved)
    for path in secret_paths(kind, resolved):
        if get_path(resolved, path) == MASK:
            problem(label, path, "a masked secret, and no stored item to keep it from: write the secret or ${ENV_NAME}")
            found += 1
    try:
        item = validate(kind, resolved)
    except ConfigInvalid as exc:
        for field_name, messages in exc.errors.items():
            for message in messages:
                problem(label, None if field_name == "_schema" else field_name, message)
        return None
    if found:
        return None
    new = raw.of(kind, item)
    if source is not None:
        differs = _diff(raw.of(kind, source), new)
        if not differs:
            return Change(kind, key, UNCHANGED, reason=f"defined in {source.source or 'a provisioned file'}")
        return Change(
            kind,
            key,
            REFUSED,
            tuple(differs),
            f"defined in {source.source or 'a provisioned file'} and read-only here: change that file instead",
        )
    if existing is not None:
        differs = _diff(raw.of(kind, validate(kind, existing)), new) if _valid(kind, existing) else ["(stored item)"]
        if not differs:
            return Change(kind, key, UNCHANGED, raw=resolved)
        return Change(kind, key, CHANGE, tuple(differs), raw=resolved)
    return Change(kind, key, ADD, raw=resolved)


def _plan_singleton(
    section: str, data: Any, provisioned: model.Config, store: ConfigOverrides, env: Mapping[str, str], problem: Any
) -> Change | None:
    secrets = FINESSE_SECRETS if section == "finesse" else ()
    loader = schemas.FinesseSchema if section == "finesse" else schemas.DefaultRuleSchema
    if not isinstance(data, dict):
        problem(section, None, "must be a mapping")
        return None
    missing = _reference_problems(data, env, secrets, section, problem)
    resolved = {k: _substitute(v, env) if k in secrets else v for k, v in data.items()}
    current = getattr(provisioned, section)
    stored = store.singleton(section) if section in UI_SINGLETONS and current is None else None
    if stored is not None:
        resolved = keep_secrets(section, stored, resolved)
    try:
        item = loader().load(resolved)
    except ValidationError as exc:
        for field_name, messages in flatten_errors(exc.messages).items():
            for message in messages:
                problem(section, None if field_name == "_schema" else field_name, message)
        return None
    if current is None and section in UI_SINGLETONS:
        for path in SECRET_FIELDS[section]:
            if get_path(resolved, path) == MASK:
                problem(section, path, "a masked secret, and no stored one to keep: write the secret or ${ENV_NAME}")
                missing += 1
    if missing:
        return None
    if current is not None:
        if replace(item, source=current.source) == current:
            return Change(section, section, UNCHANGED, reason=f"defined in {current.source or 'a provisioned file'}")
        return Change(
            section,
            section,
            REFUSED,
            tuple(_diff(_section_raw(current), _section_raw(item))),
            f"defined in {current.source or 'a provisioned file'} and read-only here: change that file instead",
        )
    if section not in UI_SINGLETONS:
        return Change(
            section, section, REFUSED, reason=f"{section} is set in the provisioning files (entrypoints/) only"
        )
    if stored is None:
        return Change(section, section, ADD, raw=resolved)
    before = _section_raw(validate(section, stored)) if _valid(section, stored) else {"(stored section)": None}
    differs = _diff(before, _section_raw(item))
    if not differs:
        return Change(section, section, UNCHANGED, raw=resolved)
    return Change(section, section, CHANGE, tuple(differs), raw=resolved)


def _plan_agent(
    index: int,
    data: Any,
    stored: dict[str, dict[str, Any]],
    provisioned: model.Config,
    env: Mapping[str, str],
    seen: set[str],
    finesse_after: bool,
    problem: Any,
) -> Change | None:
    """A `hybrid_agents` item of the file against the provisioned ones and those made here (by login,
    any case). A clear password is compared with the stored hash; left out or masked, it keeps it."""
    login = data.get("login") if isinstance(data, dict) else None
    label = f"{AGENTS}[{index}]" + (f" ({login!r})" if login else "")
    if not isinstance(data, dict):
        problem(label, None, "an item must be a mapping")
        return None
    found = _reference_problems(data, env, AGENT_SECRETS, label, problem)
    resolved: dict[str, Any] = _copy(data)
    password = resolved.get("password")
    if isinstance(password, str) and (password in KEEP_PASSWORD or found):
        resolved.pop("password")  # kept; or its variable is unset, which is its one problem
    elif isinstance(password, str):
        resolved["password"] = _substitute(password, env)
    try:
        item: model.HybridAgent = validate(AGENTS, resolved)
    except ConfigInvalid as exc:
        for field_name, messages in exc.errors.items():
            for message in messages:
                problem(label, None if field_name == "_schema" else field_name, message)
        return None
    key = agent_key(item.login)
    if key in seen:
        problem(label, "login", "repeated in this file (logins are compared in any case)")
        return None
    seen.add(key)
    source = provisioned.hybrid_agent(item.login)
    existing = stored.get(key)
    kept = "password" in data and "password" not in resolved and not found
    if source is None and existing is None and kept:
        problem(label, "password", "a masked password, and no stored agent to keep it from: write it or ${ENV_NAME}")
        found += 1
    given = isinstance(password, str) and password not in KEEP_PASSWORD  # an unset ${VAR} is its own problem
    if source is None and not (item.local or given or (existing or {}).get("password_hash") or finesse_after):
        problem(label, "password", NO_FINESSE_AGENT_PROBLEM)
        found += 1
    if found:
        return None
    if source is not None:
        differs = _diff(agent_shape(replace(source, login=item.login)), agent_shape(item))  # logins: any case
        if (item.password or item.password_hash) and (item.password, item.password_hash) != (
            source.password,
            source.password_hash,
        ):
            differs.append("password")
        reason = f"defined in {source.source or 'a provisioned file'}"
        if not differs:
            return Change(AGENTS, item.login, UNCHANGED, reason=reason)
        return Change(
            AGENTS, item.login, REFUSED, tuple(differs), f"{reason} and read-only here: change that file instead"
        )
    if existing is None:
        return Change(AGENTS, item.login, ADD, raw=resolved)
    before = validate(AGENTS, existing) if _valid(AGENTS, existing) else None
    differs = _diff(agent_shape(before), agent_shape(item)) if before is not None else ["(stored item)"]
    stored_hash = existing.get("password_hash") or ""
    new_password = bool(item.password) and not (stored_hash and check_password_hash(stored_hash, item.password or ""))
    if new_password or (item.password_hash and item.password_hash != stored_hash):
        differs.append("password")
    if not differs:
        return Change(AGENTS, item.login, UNCHANGED, raw=resolved)
    return Change(AGENTS, item.login, CHANGE, tuple(differs), raw=resolved)


def _cross_check_skills(writes: list[Change], current: model.Config, problem: Any) -> None:
    """The store's spelling check of Hybrid Chat skills (one spelling across queues and agents), over
    the configuration as the import would leave it, before anything is written."""
    agents = {agent_key(a.login): a for a in current.hybrid_agents}
    integrations = {i.name: i for i in current.integrations}
    for change in writes:
        if change.kind == AGENTS:
            agents[agent_key(change.key)] = validate(AGENTS, change.raw)
        elif change.kind == "integrations":
            integrations[change.key] = validate("integrations", change.raw)
    imported = {c.key for c in writes if c.kind == "integrations"}
    queue_spelling: dict[str, str] = {}
    for integration in integrations.values():
        for index, field_name, message in skill_spelling_problems(integration, agents.values()):
            if integration.name in imported:
                problem(f"integrations ({integration.name!r})", f"entry_points.{index}.{field_name}", message)
        if integration.type == "hybrid":
            for entry_point in integration.entry_points:
                for skill in entry_point.skills:
                    queue_spelling.setdefault(skill.casefold(), skill)
    for change in (c for c in writes if c.kind == AGENTS):
        for position, skill in enumerate(agents[agent_key(change.key)].skills):
            spelling = queue_spelling.get(skill.casefold(), skill)
            if spelling != skill:
                problem(
                    f"{AGENTS} ({change.key!r})",
                    f"skills.{position}",
                    f"queues write it {spelling!r}: skills are compared exactly, write one spelling",
                )


def _section_raw(item: Any) -> dict[str, Any]:
    """A singleton section's model as its YAML shape, for a diff."""
    return {k: v for k, v in asdict(item).items() if v is not None and k != "source"}


def _reference_problems(
    data: dict[str, Any], env: Mapping[str, str], secrets: Iterable[str], label: str, problem: Any
) -> int:
    """Report `${ENV}` references outside the secret fields and unset variables; returns how many."""
    count = 0
    for path, value in _leaves(data):
        if not isinstance(value, str) or not ENV_REFERENCE.search(value):
            continue
        if path not in secrets:
            problem(label, path, "${...} references are resolved in secret fields only: write the value itself")
            count += 1
            continue
        for match in ENV_REFERENCE.finditer(value):
            if match.group(1) not in env:
                problem(
                    label, path, f"environment variable {match.group(1)} is not set (written ${{{match.group(1)}}})"
                )
                count += 1
    return count


def _resolve(kind: str, data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    resolved: dict[str, Any] = _copy(data)  # a copy of a dict is a dict
    for path in secret_paths(kind, resolved):
        value = get_path(resolved, path)
        if isinstance(value, str):
            set_path(resolved, path, _substitute(value, env))
    return resolved


def _substitute(value: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(value, str):
        return value
    return ENV_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def _cross_check(
    writes: list[Change],
    current: model.Config,
    file_rules: list[tuple[str, Mapping[str, Any]]],
    failed: Mapping[str, set[str]],
    problem: Any,
) -> set[str]:
    """References the store would refuse at save time, found before anything is written and beside
    the items' own problems: each rule of the file (`file_rules`, valid or not) points at an asset,
    an integration and an entry point that exist once the import is done; changed integrations keep
    the entry points other rules use. A reference to an item of the file that has problems of its
    own (`failed`) is not reported again. Returns the names of the file's rules found wanting."""
    integrations = {i.name: i for i in current.integrations}
    assets = {item_key("assets", a): a for a in current.assets}
    flows = {f.name: f for f in current.flows}
    writes = [c for c in writes if c.kind in KINDS]  # a singleton section is referred to by no rule
    for change in writes:
        if change.kind == "integrations":
            integrations[change.key] = validate(change.kind, change.raw)
        elif change.kind == "assets":
            assets[change.key] = validate(change.kind, change.raw)
        elif change.kind == "flows":
            flows[change.key] = validate(change.kind, change.raw)
    after = replace(
        current, integrations=tuple(integrations.values()), assets=tuple(assets.values()), flows=tuple(flows.values())
    )
    for change in writes:  # the flows the file's entry points name exist once the import is done
        if change.kind == "integrations":
            _report(f"integrations ({change.key!r})", entry_point_flow_errors(change.raw, after), set(), problem)
    imported: set[str] = set()
    broken: set[str] = set()
    for label, data in file_rules:
        imported.add(str(data.get("name")))
        action = data.get("action")
        forward_to = str(action.get("forward_to")) if isinstance(action, Mapping) else None
        skip = {"action.forward_to", "action.entry_point"} if forward_to in failed["integrations"] else set()
        if f"{data.get('channel')}/{data.get('asset')}" in failed["assets"]:
            skip.add("asset")
        if _report(label, rule_reference_errors(data, after), skip, problem):
            broken.add(str(data.get("name")))
    changed = {c.key for c in writes if c.kind == "integrations"}
    others: list[model.Rule | model.DefaultRule] = [r for r in current.rules if r.name not in imported]
    if current.default_rule is not None:
        others.append(current.default_rule)
    for rule in others:
        if rule.action.forward_to in changed:
            _report(
                f"rules ({rule.name!r})", rule_reference_errors({"action": asdict(rule.action)}, after), set(), problem
            )
    return broken


def _report(label: str, errors: Mapping[str, list[str]], skip: set[str], problem: Any) -> bool:
    """Each error of `errors` but the `skip`ped fields as a problem of `label`; whether there was one."""
    shown = {field_name: messages for field_name, messages in errors.items() if field_name not in skip}
    for field_name, messages in shown.items():
        for message in messages:
            problem(label, field_name, message)
    return bool(shown)


def _valid(kind: str, data: dict[str, Any]) -> bool:
    try:
        validate(kind, data)
    except ConfigInvalid:
        return False
    return True


# -- small tree helpers (dotted paths, as the store names secret fields) -----------------------------


def _diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths whose values differ between two raw items."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            paths += _diff(old.get(key), new.get(key), path)
        return paths
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in _diff(a, b, f"{prefix}.{i}")]
    return [] if old == new else [prefix or "(item)"]


def _leaves(data: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, f"{prefix}.{index}")
    else:
        yield prefix, data


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data
