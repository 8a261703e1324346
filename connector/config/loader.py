"""Provisioned configuration: `entrypoints/*.yaml` → validated `Config`.

Every problem is collected (not just the first) and reported with the file, the item and the field,
because an operator fixing a deployment wants the whole list at once. `${ENV_NAME}` inside a string
is replaced by the environment variable; a missing one is an error, never an empty secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError

from connector.config import flow_routes, model, schemas

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SECTIONS = ("integrations", "assets", "rules", "default_rule", "finesse", "hybrid_agents", "flows")
TEMPLATE_SUFFIX = ".txt.j2"
"""A template file's suffix under message_templates/<locale>/ (connector/messages/templates.py)."""


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    item: str
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.item}"
        if self.field:
            where += f": field '{self.field}'"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every one found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _flatten(messages: Any, prefix: str = "") -> Iterable[tuple[str | None, str]]:
    """marshmallow's nested error dict → (dotted field, message) pairs."""
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key)
            path = prefix if name == "_schema" else (f"{prefix}.{name}" if prefix else name)
            yield from _flatten(value, path)
    elif isinstance(messages, list | tuple):
        for value in messages:
            yield from _flatten(value, prefix)
    else:
        yield (prefix or None), str(messages)


def _substitute_env(value: Any, env: Mapping[str, str], missing: list[tuple[str, str]], path: str) -> Any:
    if isinstance(value, str):

        def replace_one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                # Keep the reference text: the item still validates (so cross-references are
                # checked) and the one real problem, the unset variable, is reported alone.
                missing.append((path, name))
                return match.group(0)
            return env[name]

        return ENV_REFERENCE.sub(replace_one, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v, env, missing, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, env, missing, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _item_label(section: str, index: int, raw: Any) -> str:
    """`rules[0] ('r1')`; a hybrid agent is named by its login (its identity), not its display name."""
    name = raw.get("login" if section == "hybrid_agents" else "name") if isinstance(raw, dict) else None
    return f"{section}[{index}]" + (f" ({name!r})" if name else "")


class _FileLoader:
    """Validates the items of one file, collecting problems."""

    def __init__(self, label: str, env: Mapping[str, str], problems: list[ConfigProblem]) -> None:
        self.label = label
        self.env = env
        self.problems = problems

    def problem(self, item: str, field: str | None, message: str) -> None:
        self.problems.append(ConfigProblem(self.label, item, field, message))

    def item(self, section: str, index: int | None, raw: Any, load: Any) -> Any:
        item = section if index is None else _item_label(section, index, raw)
        missing: list[tuple[str, str]] = []
        resolved = _substitute_env(raw, self.env, missing, "")
        unset = {path for path, _ in missing}
        for path, name in missing:
            self.problem(item, path or None, f"environment variable {name} is not set (written ${{{name}}})")
        # An unset secret is its one problem: validate the rest without it, so its rules are still
        # cross-checked and no follow-on errors ("too short", "needs a token") bury the cause.
        for path in unset:
            _drop_path(resolved, path)
        try:
            return load(resolved, partial=tuple(unset)) if unset else load(resolved)
        except ValidationError as exc:
            for field, message in _flatten(exc.messages):
                if field not in unset:
                    self.problem(item, field, message)
            return None


def _drop_path(data: Any, dotted: str) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict):
        data.pop(parts[-1], None)


def top_level_problem(document: Any) -> str | None:
    """What is wrong with a provisioning file's top level, in words, or None for a mapping: a file that
    is one list of items (or one value) reads naturally to its author, so say what shape is expected."""
    if isinstance(document, dict):
        return None
    if isinstance(document, list):
        shape = "a list"
    elif isinstance(document, bool):  # before int: YAML's true is a bool, and bool is an int
        shape = "true or false"
    elif isinstance(document, int | float):
        shape = "a number"
    elif isinstance(document, str):
        shape = "a text"
    else:
        shape = f"a {type(document).__name__}"
    expected = ", ".join(f"{section}:" for section in SECTIONS)
    return f"the file's top level is {shape}; expected a mapping with one or more of {expected}"


def _schema_loader(schema: type[Schema]) -> Any:
    return lambda data, partial=(): schema().load(data, partial=partial)


def load_file(path: Path, label: str, env: Mapping[str, str], problems: list[ConfigProblem]) -> dict[str, list[Any]]:
    """Items of one file with `source` set; invalid items are dropped and reported."""
    loaded: dict[str, list[Any]] = {section: [] for section in SECTIONS}
    checker = _FileLoader(label, env, problems)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "file"
        checker.problem(where, None, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return loaded
    except OSError as exc:
        checker.problem("file", None, f"cannot be read: {exc.strerror}")
        return loaded
    if document is None:
        return loaded
    if (wrong := top_level_problem(document)) is not None:
        checker.problem("top level", None, wrong)
        return loaded
    try:
        sections = schemas.FileSchema().load(document)
    except ValidationError as exc:
        for field, message in _flatten(exc.messages):
            checker.problem("top level", field, message)
        return loaded

    loaders = {
        "integrations": _schema_loader(schemas.IntegrationSchema),
        "assets": schemas.load_asset,
        "rules": _schema_loader(schemas.RuleSchema),
        "hybrid_agents": _schema_loader(schemas.HybridAgentSchema),
        "flows": _schema_loader(schemas.FlowSchema),
    }
    for section, load in loaders.items():
        for index, raw in enumerate(sections[section]):
            value = checker.item(section, index, raw, load)
            if value is not None:
                if section == "hybrid_agents" and not value.local and isinstance(raw, dict) and raw.get("password"):
                    # Its password's variable is unset (reported as its one problem): keep the reference
                    # text, so the cross-check does not also call it an agent without a password.
                    value = replace(value, password=str(raw["password"]))
                loaded[section].append(replace(value, source=label))
    if sections["default_rule"] is not None:
        value = checker.item("default_rule", None, sections["default_rule"], _schema_loader(schemas.DefaultRuleSchema))
        if value is not None:
            loaded["default_rule"].append(replace(value, source=label))
    if sections["finesse"] is not None:
        value = checker.item("finesse", None, sections["finesse"], _schema_loader(schemas.FinesseSchema))
        if value is not None:
            loaded["finesse"].append(replace(value, source=label))
    return loaded


def _cross_check(config: model.Config, problems: list[ConfigProblem], templates_dir: Path | None = None) -> None:
    """References between items: names unique, rules point at existing assets, entry points and
    flows; with `templates_dir`, every template a flow sends exists."""

    def unique(kind: str, items: Iterable[Any], key: Any) -> None:
        seen: dict[Any, str] = {}
        for item in items:
            k = key(item)
            if k in seen:
                problems.append(
                    ConfigProblem(
                        item.source or "?", f"{kind} ({item.name!r})", "name", f"already defined in {seen[k]}"
                    )
                )  # the index is ambiguous across files; the name is what the operator searches for
            seen[k] = item.source or "?"

    unique("integrations", config.integrations, lambda i: i.name)
    unique("assets", config.assets, lambda a: (a.channel, a.name))
    unique("rules", config.rules, lambda r: r.name)
    unique("flows", config.flows, lambda f: f.name)
    _check_flows(config, problems, templates_dir)
    seen_logins: dict[str, str] = {}
    for agent in config.hybrid_agents:
        login = agent.login.casefold()
        if login in seen_logins:
            problems.append(
                ConfigProblem(
                    agent.source or "?", f"hybrid_agents ({agent.login!r})", "login", f"already in {seen_logins[login]}"
                )
            )
        seen_logins[login] = agent.source or "?"
    _check_hybrid_agents(config, problems)

    def check(source: str | None, item: str, shape: Mapping[str, Any]) -> None:
        for field, messages in rule_reference_errors(shape, config).items():
            problems.extend(ConfigProblem(source or "?", item, field, message) for message in messages)

    for rule in config.rules:
        same_file = [r for r in config.rules if r.source == rule.source]
        item = _item_label("rules", same_file.index(rule), {"name": rule.name})
        check(rule.source, item, {"channel": rule.channel, "asset": rule.asset, "action": asdict(rule.action)})
    if config.default_rule is not None:
        check(config.default_rule.source, "default_rule", {"action": asdict(config.default_rule.action)})
    if config.finesse is not None and (missing := chat_mrd_missing(config.finesse, config.integrations)):
        problems.append(ConfigProblem(config.finesse.source or "?", "finesse", "chat_mrd_id", missing))


def rule_reference_errors(rule: Mapping[str, Any], config: model.Config) -> dict[str, list[str]]:
    """What a rule (its raw mapping, valid or not) refers to that `config` lacks, by dotted field: its
    asset, its integration, that integration's entry point. A value of the wrong type is the schema's
    to name, so it is passed over here; then a form can show both at once. The loader, the config
    store and an import check references with this one function."""
    errors: dict[str, list[str]] = {}
    channel, asset = rule.get("channel"), rule.get("asset")
    known_channel = isinstance(channel, str) and channel in schemas.CHANNELS
    if known_channel and isinstance(asset, str) and config.asset(str(channel), asset) is None:
        errors["asset"] = [f"no {channel} asset named {asset!r}"]
    action = rule.get("action")
    forward_to = action.get("forward_to") if isinstance(action, Mapping) else None
    if isinstance(action, Mapping) and isinstance(forward_to, str):
        integration = config.integration(forward_to)
        entry_point = action.get("entry_point")
        if integration is None:
            errors["action.forward_to"] = [f"no integration named {forward_to!r}"]
        elif isinstance(entry_point, str) and integration.entry_point(entry_point) is None:
            errors["action.entry_point"] = [f"integration {forward_to!r} has no entry point named {entry_point!r}"]
    flow = action.get("flow") if isinstance(action, Mapping) else None
    if isinstance(flow, str) and config.flow(flow) is None:
        errors["action.flow"] = [f"no flow named {flow!r}"]
    return errors


def _check_flows(config: model.Config, problems: list[ConfigProblem], templates_dir: Path | None) -> None:
    """Entry points name existing flows; each template a flow sends has a file in some locale (the
    default locale's is the fallback of every other, message_templates/README.md)."""
    for integration in config.integrations:
        files_items = [i for i in config.integrations if i.source == integration.source]
        item = _item_label("integrations", files_items.index(integration), {"name": integration.name})
        for index, entry_point in enumerate(integration.entry_points):
            if entry_point.flow and config.flow(entry_point.flow) is None:
                field = f"entry_points.{index}.flow"
                problems.append(
                    ConfigProblem(integration.source or "?", item, field, f"no flow named {entry_point.flow!r}")
                )
    for flow, field, message in flow_routes.route_problems(config):
        same_file = [f for f in config.flows if f.source == flow.source]
        item = _item_label("flows", same_file.index(flow), {"name": flow.name})
        problems.append(ConfigProblem(flow.source or "?", item, field, message))
    if templates_dir is None:
        return
    for flow in config.flows:
        same_file = [f for f in config.flows if f.source == flow.source]
        item = _item_label("flows", same_file.index(flow), {"name": flow.name})
        for field, messages in flow_template_errors(flow, templates_dir).items():
            problems.extend(ConfigProblem(flow.source or "?", item, field, message) for message in messages)


def flow_template_errors(flow: Any, templates_dir: Path) -> dict[str, list[str]]:
    """Each template `flow` sends that no locale folder of `templates_dir` has, by dotted field. The
    loader (check-config) and the config store (a flow made in the UI or API) check with this one."""
    errors: dict[str, list[str]] = {}
    for field, name in schemas.flow_templates(flow):
        if (missing := template_missing(name, templates_dir)) is not None:
            errors.setdefault(field, []).append(missing)
    return errors


def template_missing(name: str, templates_dir: Path) -> str | None:
    """What is wrong when no locale folder of `templates_dir` has template `name`, or None."""
    locales = [p for p in templates_dir.iterdir() if p.is_dir()] if templates_dir.is_dir() else []
    if any((locale / f"{name}{TEMPLATE_SUFFIX}").is_file() for locale in locales):
        return None
    return f"no template {name!r}: add {templates_dir.name}/<locale>/{name}{TEMPLATE_SUFFIX}"


NO_FINESSE_AGENT_PROBLEM = (
    "without a finesse: section every agent is a local agent, who logs in with a password: "
    "set password (${ENV_NAME}) or password_hash, or add the finesse: section if this is a Finesse agent"
)


def _check_hybrid_agents(config: model.Config, problems: list[ConfigProblem]) -> None:
    """Hybrid Chat agents of the files: without a `finesse:` section an agent can only be a local one,
    who needs a password; and a queue's skill may not differ from an agent's only in case (skills are
    compared exactly, so such a queue would never be offered to that agent)."""
    for agent in config.hybrid_agents:
        if config.finesse is None and not agent.local:
            same_file = [a for a in config.hybrid_agents if a.source == agent.source]
            item = _item_label("hybrid_agents", same_file.index(agent), {"login": agent.login})
            problems.append(ConfigProblem(agent.source or "?", item, "password", NO_FINESSE_AGENT_PROBLEM))
    for integration in config.integrations:
        for index, field, message in skill_spelling_problems(integration, config.hybrid_agents):
            files_items = [i for i in config.integrations if i.source == integration.source]
            item = _item_label("integrations", files_items.index(integration), {"name": integration.name})
            problems.append(ConfigProblem(integration.source or "?", item, f"entry_points.{index}.{field}", message))


def skill_spelling_problems(
    integration: model.Integration, agents: Iterable[model.HybridAgent]
) -> list[tuple[int, str, str]]:
    """(entry point index, field, message) for each skill of a Hybrid Chat queue that an agent writes in
    another spelling (`English` / `english`): skills are compared exactly, so that agent would never be
    offered the queue's chats. One spelling across queues and agents; the overrides check the same."""
    if integration.type != "hybrid":
        return []
    spelled: dict[str, set[str]] = {}
    for agent in agents:
        for skill in agent.skills:
            spelled.setdefault(skill.casefold(), set()).add(skill)
    found = []
    for index, entry_point in enumerate(integration.entry_points):
        for position, skill in enumerate(entry_point.skills):
            others = sorted(spelled.get(skill.casefold(), set()) - {skill})
            if others:
                found.append(
                    (
                        index,
                        f"skills.{position}",
                        f"agents write it {', '.join(repr(o) for o in others)}: skills are compared exactly, "
                        "write one spelling",
                    )
                )
    return found


def chat_mrd_missing(finesse: model.FinesseConfig, integrations: Iterable[model.Integration]) -> str | None:
    """With an ECE integration, blending must know ECE's chat MRD on Finesse, or a voice call would not
    stop ECE routing chats to the agent (docs/blending.md, "The chat side"): what is wrong, or None.
    The overrides (UI-made items) check the same."""
    given = bool(finesse.chat_mrd_id or finesse.chat_mrd_name)
    return chat_mrd_missing_for(given, [i.name for i in integrations if i.type == "ece"])


def chat_mrd_missing_for(mrd_given: bool, ece: list[str]) -> str | None:
    """`chat_mrd_missing` from whether the section names the MRD and the names of the ECE integrations,
    for an item that does not validate yet: its problem is shown beside the item's other errors."""
    if mrd_given or not ece:
        return None
    return (
        f"ECE integration {', '.join(repr(n) for n in ece)} routes chats that a voice call must interrupt: set "
        "finesse.chat_mrd_id to the id of ECE's chat media routing domain (MRD) in Finesse, or "
        "finesse.chat_mrd_name to its name (looked up in Finesse when the listener starts)"
    )


def load_config(
    directory: Path, env: Mapping[str, str] | None = None, templates_dir: Path | None = None
) -> model.Config:
    """Load and validate every `*.yaml` / `*.yml` file of `directory`; raise ConfigError listing all
    problems. With `templates_dir` (check-config), the templates flows send must exist there."""
    env = os.environ if env is None else env
    problems: list[ConfigProblem] = []
    if not directory.is_dir():
        raise ConfigError([ConfigProblem(str(directory), "folder", None, "does not exist")])
    merged: dict[str, list[Any]] = {section: [] for section in SECTIONS}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        label = _display_path(path)
        for section, items in load_file(path, label, env, problems).items():
            merged[section].extend(items)
    for section in ("default_rule", "finesse"):
        if len(merged[section]) > 1:
            problems.append(ConfigProblem(_display_path(directory), section, None, "defined in more than one file"))
    config = model.Config(
        integrations=tuple(merged["integrations"]),
        assets=tuple(merged["assets"]),
        rules=tuple(merged["rules"]),
        default_rule=merged["default_rule"][0] if merged["default_rule"] else None,
        finesse=merged["finesse"][0] if merged["finesse"] else None,
        hybrid_agents=tuple(merged["hybrid_agents"]),
        flows=tuple(merged["flows"]),
    )
    _cross_check(config, problems, templates_dir)
    if problems:
        raise ConfigError(problems)
    return config


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
