"""Configuration made in the UI or API, kept in Redis beside the provisioned files
(docs/architecture.md, "Configuration concepts").

Invariants:
- Items are stored as the raw mapping an operator wrote (the YAML shape), validated with the same
  schemas as the files before they are written, so `check-config`, the UI and the API agree.
- Provisioned items are read-only: a UI item may not take the name of one, and edits to them are
  refused with the file that defines them.
- The name is an item's identity: it cannot change on update (a rule refers to it by name).
- Every write bumps one version counter; processes rebuild their merged `Config` when it moves
  (`Runtime.config`), so a change reaches the web and worker processes within a second.
- Deleting an integration or an asset a rule still uses is refused, naming the rules; deleting a flow a
  rule or an entry point names is refused, naming them.
- Flows are a kind like the others: the schema check-config uses, plus what the loader cross-checks
  (each template the flow sends exists, when the store knows the templates folder). They come first in
  KINDS, so an import writes them before the rules and entry points that name them.
- A singleton section (`finesse:`) may be made here only while no provisioning file defines it; a
  file that defines it later wins, and the UI one is skipped (logged), as a shadowed item is.
- Hybrid Chat agents (`hybrid_agents`) are keyed by login, case-insensitively (as Finesse logins
  are). A local agent's password is stored only as its hash (werkzeug's, as the operator accounts'),
  never in clear and never shown; an empty password on an edit keeps the stored hash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields
from redis import Redis
from werkzeug.security import generate_password_hash

from connector import channels
from connector.config import model, schemas
from connector.config.loader import (
    NO_FINESSE_AGENT_PROBLEM,
    chat_mrd_missing_for,
    flow_template_errors,
    rule_reference_errors,
    skill_spelling_problems,
    template_missing,
)
from connector.flows.definition import Flow
from connector.store import keys, replies

log = logging.getLogger(__name__)

KINDS = ("flows", "integrations", "assets", "rules")
SINGLETONS = ("finesse",)
"""Sections a deployment has at most one of that the UI / API may make. Each is stored as one item
(its key is the section name) in `keys.config_items(<section>)`, validated by the section's schema."""
AGENTS = "hybrid_agents"
"""Hybrid Chat agents made in the UI or API: stored in `keys.config_items(AGENTS)` by login casefolded,
validated by `HybridAgentSchema`, a password kept only as `password_hash`."""
MASK = "********"
"""What a secret shows as in the UI, the API and exports; sent back unchanged, it keeps the secret."""
PASSWORD_SET, PASSWORD_NOT_SET = "set", "not set"
"""How a hybrid agent's password shows (never the password or its hash)."""
KEEP_PASSWORD = frozenset({"", MASK, PASSWORD_SET, PASSWORD_NOT_SET})
"""A hybrid agent's `password` sent as one of these (or left out) keeps the stored hash."""

SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "integrations": ("client_secret", "callback_auth.token", "callback_auth.password"),
    "assets": tuple(dict.fromkeys(name for cls in channels.CHANNELS.values() for name in cls.secret_fields)),
    "rules": (),
    "flows": (),
    "finesse": ("admin_password",),
}
"""Dotted paths of the secret fields of each kind and singleton (the assets' from their channels)."""


class ConfigInvalid(Exception):
    """The item does not validate; `errors` maps dotted field → messages (as marshmallow names them)."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = dict(errors)


class ConfigConflict(Exception):
    """The write would break the configuration: a name taken, a provisioned item, a rule still using it."""


class NotFound(KeyError):
    pass


@dataclass(frozen=True)
class Stored:
    """One UI/API item: its raw mapping (secrets included) and its validated model."""

    raw: dict[str, Any]
    item: Any


def item_key(kind: str, raw_or_item: Any) -> str:
    """The key of an item inside its kind: `channel/name` for assets, the name otherwise."""
    get: Callable[[str], Any] = (
        raw_or_item.get if isinstance(raw_or_item, Mapping) else lambda k: getattr(raw_or_item, k, None)
    )
    if kind == "assets":
        return f"{get('channel')}/{get('name')}"
    return str(get("name"))


def validate(kind: str, raw: Any) -> Any:
    """The model item of `raw` (a kind's item or a singleton section), or ConfigInvalid naming each bad field."""
    if kind not in KINDS and kind not in SINGLETONS and kind != AGENTS:
        raise ValueError(f"unknown kind {kind!r}")
    if not isinstance(raw, Mapping):
        raise ConfigInvalid({"_schema": ["an item must be a mapping"]})
    loaders: dict[str, Callable[[dict[str, Any]], Any]] = {
        "integrations": lambda d: schemas.IntegrationSchema().load(d),
        "assets": schemas.load_asset,
        "rules": lambda d: schemas.RuleSchema().load(d),
        "flows": lambda d: schemas.FlowSchema().load(d),
        "finesse": lambda d: schemas.FinesseSchema().load(d),
        AGENTS: lambda d: schemas.HybridAgentSchema().load(d),
    }
    data = dict(raw)
    if kind == "integrations" and data.get("type") == "hybrid" and data.get("base_url") == "":
        del data["base_url"]  # a Hybrid Chat integration has no address: "" (its raw shape's) is none
    try:
        return loaders[kind](data)
    except ValidationError as exc:
        raise ConfigInvalid(flatten_errors(exc.messages)) from None


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested errors → {"entry_points.0.id": ["..."]} ("_schema" for the whole item)."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = str(key)
            path = prefix if name == "_schema" else (f"{prefix}.{name}" if prefix else name)
            for field, texts in flatten_errors(value, path).items():
                flat.setdefault(field, []).extend(texts)
    elif isinstance(messages, list | tuple):
        for value in messages:
            for field, texts in flatten_errors(value, prefix).items():
                flat.setdefault(field, []).extend(texts)
    else:
        flat.setdefault(prefix or "_schema", []).append(str(messages))
    return flat


# -- secrets ----------------------------------------------------------------------------------------


def get_path(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path (`callback_auth.token`, `steps.2.secret`: a number indexes a list),
    None where a part is missing."""
    value: Any = data
    for part in dotted.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return None
    return value


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Replace the value at a dotted path if it is there (never creates one)."""
    *parents, last = dotted.split(".")
    parent = get_path(data, ".".join(parents)) if parents else data
    if isinstance(parent, dict) and last in parent:
        parent[last] = value


FLOW_STEP_SECRET = "secret"  # noqa: S105 (a field's name, not a secret)
"""A flow step's secret field (`verify` and `bot` steps: the HMAC key of their calls), whatever the kind."""


def secret_paths(kind: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The dotted paths of `raw`'s secrets: the kind's fixed ones; a flow's, each step's `secret`."""
    if kind != "flows":
        return SECRET_FIELDS[kind]
    steps = raw.get("steps")
    found = enumerate(steps if isinstance(steps, list) else [])
    return tuple(f"steps.{i}.{FLOW_STEP_SECRET}" for i, step in found if isinstance(step, Mapping))


def masked(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `raw` with every secret that is set shown as MASK."""
    copy: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    for path in secret_paths(kind, copy):
        if get_path(copy, path):
            set_path(copy, path, MASK)
    for step in _flow_steps(kind, copy):
        if step.get(STEP_SECRET):
            step[STEP_SECRET] = MASK
    return copy


STEP_SECRET = "secret"  # noqa: S105  # a field name, not a value
"""A flow step's secret (`verify`, `bot`): in a list, so matched by the step's name, not a path."""


def _flow_steps(kind: str, raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    steps = raw.get("steps") if kind == "flows" else None
    return [step for step in steps if isinstance(step, dict)] if isinstance(steps, list) else []


def keep_secrets(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` with each secret that came back as MASK, or empty, replaced by the stored one: an
    operator editing other fields never has to retype (or see) a secret."""
    merged: dict[str, Any] = json.loads(json.dumps(new, default=str))
    if kind == "flows":
        return _keep_step_secrets(old, merged)
    for path in SECRET_FIELDS[kind]:
        value = get_path(merged, path)
        if value in (MASK, "", None) and get_path(old, path):
            *parents, last = path.split(".")
            target = merged
            for part in parents:
                target = target.setdefault(part, {}) if isinstance(target.get(part), dict | None) else {}
            target[last] = get_path(old, path)
    kept = {(s.get("name"), s.get("type")): s.get(STEP_SECRET) for s in _flow_steps(kind, old)}
    for step in _flow_steps(kind, merged):
        if step.get(STEP_SECRET) in (MASK, "", None) and kept.get((step.get("name"), step.get("type"))):
            step[STEP_SECRET] = kept[(step.get("name"), step.get("type"))]
    return merged


def _keep_step_secrets(old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A flow's steps' secrets sent back as MASK (or empty) take those of the stored step of the same
    name and type: steps move, so their place says nothing."""
    old_steps, new_steps = old.get("steps"), new.get("steps")
    stored = {
        (step.get("name"), step.get("type")): step.get(FLOW_STEP_SECRET)
        for step in (old_steps if isinstance(old_steps, list) else [])
        if isinstance(step, Mapping)
    }
    for step in new_steps if isinstance(new_steps, list) else []:
        if not isinstance(step, dict) or step.get(FLOW_STEP_SECRET) not in (MASK, ""):
            continue
        kept = stored.get((step.get("name"), step.get("type")))
        if kept:
            step[FLOW_STEP_SECRET] = kept
    return new


# -- the store --------------------------------------------------------------------------------------


class ConfigOverrides:
    """CRUD of UI/API items and the deployment-wide template overrides, over one Redis."""

    def __init__(self, redis: Redis, templates_dir: Path | None = None) -> None:
        self.redis = redis
        self.templates_dir = templates_dir
        """Where the templates a flow sends must exist (message_templates/); None checks none."""

    def version(self) -> int:
        return int(replies.bytes_or_none(self.redis.get(keys.config_version())) or 0)

    # -- reading --------------------------------------------------------------------------------

    def raw_items(self, kind: str) -> dict[str, dict[str, Any]]:
        """key → raw mapping, in key order."""
        stored = replies.bytes_hash(self.redis.hgetall(keys.config_items(kind)))
        return {k.decode(): json.loads(v) for k, v in sorted(stored.items())}

    def raw(self, kind: str, key: str) -> dict[str, Any]:
        value = replies.bytes_or_none(self.redis.hget(keys.config_items(kind), key))
        if value is None:
            raise NotFound(f"no {kind[:-1]} {key!r} made in the UI or API")
        item: dict[str, Any] = json.loads(value)  # stored by save(): a JSON object
        return item

    def singleton(self, section: str) -> dict[str, Any] | None:
        """The raw section made in the UI or API (secrets included), or None."""
        _check_singleton(section)
        value = replies.bytes_or_none(self.redis.hget(keys.config_items(section), section))
        if value is None:
            return None
        item: dict[str, Any] = json.loads(value)  # stored by save_singleton(): a JSON object
        return item

    def rule_order(self) -> list[str]:
        order = replies.bytes_list(self.redis.lrange(keys.config_rule_order(), 0, -1))
        return [name.decode() for name in order]

    def templates(self) -> dict[str, dict[str, str]]:
        """locale → type → text of the deployment-wide overrides."""
        result: dict[str, dict[str, str]] = {}
        stored = replies.bytes_hash(self.redis.hgetall(keys.config_templates()))
        for key, text in stored.items():
            locale, _, message_type = key.decode().partition("/")
            result.setdefault(locale, {})[message_type] = text.decode()
        return result

    def merged(self, provisioned: model.Config) -> model.Config:
        """The provisioned configuration plus the UI/API items and template overrides.

        An item that no longer validates (a schema changed under it) or that a provisioned file
        has since claimed the name of is skipped and logged, never half-applied."""
        integrations = list(provisioned.integrations)
        assets = list(provisioned.assets)
        rules = list(provisioned.rules)
        flows = list(provisioned.flows)
        taken = {
            "integrations": {i.name for i in integrations},
            "assets": {item_key("assets", a) for a in assets},
            "rules": {r.name for r in rules},
            "flows": {f.name for f in flows},
        }
        targets: dict[str, list[model.Integration] | list[model.Asset] | list[model.Rule] | list[Flow]] = {
            "integrations": integrations,
            "assets": assets,
            "rules": rules,
            "flows": flows,
        }
        for kind in KINDS:
            for key, raw in self.raw_items(kind).items():
                if key in taken[kind]:
                    log.warning("UI item shadowed by a provisioned one: skipped", extra={"kind": kind, "item": key})
                    continue
                try:
                    targets[kind].append(validate(kind, raw))
                except ConfigInvalid as exc:
                    log.error("UI item no longer valid: skipped", extra={"kind": kind, "item": key, "error": str(exc)})
        return replace(
            provisioned,
            integrations=tuple(integrations),
            assets=tuple(assets),
            rules=tuple(ordered_rules(rules, self.rule_order())),
            flows=tuple(flows),
            templates=self.templates(),
            finesse=self._merged_finesse(provisioned),
            hybrid_agents=self._merged_agents(provisioned),
        )

    def _merged_agents(self, provisioned: model.Config) -> tuple[model.HybridAgent, ...]:
        agents = list(provisioned.hybrid_agents)
        taken = {a.login.casefold() for a in agents}
        for key, raw in self.raw_items(AGENTS).items():
            if key in taken:
                log.warning("UI item shadowed by a provisioned one: skipped", extra={"kind": AGENTS, "item": key})
                continue
            try:
                agents.append(validate(AGENTS, raw))
            except ConfigInvalid as exc:
                log.error("UI item no longer valid: skipped", extra={"kind": AGENTS, "item": key, "error": str(exc)})
        return tuple(agents)

    def _merged_finesse(self, provisioned: model.Config) -> model.FinesseConfig | None:
        stored = self.singleton("finesse")
        if stored is None:
            return provisioned.finesse
        if provisioned.finesse is not None:
            log.warning("UI finesse section shadowed by a provisioned one: skipped", extra={"kind": "finesse"})
            return provisioned.finesse
        try:
            item: model.FinesseConfig = validate("finesse", stored)
        except ConfigInvalid as exc:
            log.error("UI finesse section no longer valid: skipped", extra={"kind": "finesse", "error": str(exc)})
            return None
        return item

    # -- writing --------------------------------------------------------------------------------

    def prepared(self, kind: str, raw: Mapping[str, Any], provisioned: model.Config, *, create: bool) -> Stored:
        """One item as `save` would write it, without writing, every problem found at once: the schema's,
        what it refers to that does not exist (a rule's asset, integration and entry point), and the
        cross-checks (an integration's chat MRD and queue skills). ConfigInvalid names each field; a
        conflict found beside them (a provisioned or taken name, an entry point a rule uses) is named
        there too, on its field; alone, it is ConfigConflict. `create`: the key must be new; else it must
        exist (NotFound), and its secrets sent back as MASK are kept."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if not isinstance(raw, Mapping):
            raise ConfigInvalid({"_schema": ["an item must be a mapping"]})
        key = item_key(kind, raw)
        existing = replies.bytes_or_none(self.redis.hget(keys.config_items(kind), key))
        if not create:
            if existing is None:
                raise NotFound(f"no {kind[:-1]} {key!r} made in the UI or API")
            raw = keep_secrets(kind, json.loads(existing), raw)
        errors: dict[str, list[str]] = {}
        item: Any = None
        try:
            item = validate(kind, raw)
        except ConfigInvalid as exc:
            errors = dict(exc.errors)
        conflicts: dict[str, list[str]] = {}
        source = _provisioned_source(kind, key, provisioned)
        if source is not None:
            conflicts["name"] = [f"{kind[:-1]} {key!r} is defined in {source} and is read-only here"]
        elif create and existing is not None:
            article = "an" if kind[0] in "aeiou" else "a"
            conflicts["name"] = [f"{article} {kind[:-1]} named {key!r} already exists"]
        if kind == "rules":
            _add_errors(errors, rule_reference_errors(raw, self.merged(provisioned)))
        if kind == "flows" and self.templates_dir is not None:
            _add_errors(errors, _flow_template_errors(raw, item, self.templates_dir))
        if kind == "integrations":
            merged = self.merged(provisioned)
            _add_errors(errors, entry_point_flow_errors(raw, merged))
            if merged.finesse is not None and raw.get("type") == "ece":
                given = bool(merged.finesse.chat_mrd_id or merged.finesse.chat_mrd_name)
                if missing := chat_mrd_missing_for(given, [str(raw.get("name"))]):
                    _add_errors(errors, {"type": [missing]})
            if item is not None:
                _add_errors(errors, _queue_skill_errors(item, merged.hybrid_agents))
                if gone := _entry_points_in_use(item, merged):
                    conflicts["entry_points"] = [gone]
        if errors:
            raise ConfigInvalid(_add_errors(errors, conflicts))
        if conflicts:
            raise ConfigConflict("; ".join(m for messages in conflicts.values() for m in messages))
        return Stored(json.loads(json.dumps(raw, default=str)), item)

    def save(self, kind: str, raw: Mapping[str, Any], provisioned: model.Config, *, create: bool) -> Stored:
        """Validate and write one item, as `prepared` checks it. Raises ConfigInvalid, ConfigConflict or
        NotFound; nothing is written unless it returns."""
        prepared = self.prepared(kind, raw, provisioned, create=create)
        key = item_key(kind, prepared.raw)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.config_items(kind), key, json.dumps(prepared.raw, sort_keys=True))
        pipe.incr(keys.config_version())
        replies.execute(pipe)
        log.info("configuration saved", extra={"kind": kind, "item": key, "new_item": create})
        return prepared

    def delete(self, kind: str, key: str, provisioned: model.Config) -> None:
        source = _provisioned_source(kind, key, provisioned)
        if source is not None:
            raise ConfigConflict(f"{kind[:-1]} {key!r} is defined in {source} and is read-only here")
        if not self.redis.hexists(keys.config_items(kind), key):
            raise NotFound(f"no {kind[:-1]} {key!r} made in the UI or API")
        merged = self.merged(provisioned)
        users = _rules_using(kind, key, merged)
        if kind == "flows":
            users = flow_users(key, merged)
            if users:
                raise ConfigConflict(f"flow {key!r} is used by {', '.join(users)}: change them first")
        if users:
            raise ConfigConflict(f"{kind[:-1]} {key!r} is used by rule(s) {', '.join(users)}: change them first")
        self._remove(kind, key)

    def _remove(self, kind: str, key: str) -> None:
        """Delete one item made in the UI or API, in one step with the version every process
        follows (and a rule's place in the order)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.config_items(kind), key)
        if kind == "rules":
            pipe.lrem(keys.config_rule_order(), 0, key)
        pipe.incr(keys.config_version())
        replies.execute(pipe)
        log.info("configuration deleted", extra={"kind": kind, "item": key})

    def prepared_singleton(self, section: str, raw: Any, provisioned: model.Config) -> Stored:
        """A singleton section as `save_singleton` would write it, without writing: secrets sent back
        as MASK or empty take the stored ones. Raises ConfigConflict, naming the file, while a
        provisioning file defines the section, and ConfigInvalid naming each bad field (the chat MRD that
        the ECE integrations need among them)."""
        _check_singleton(section)
        source = _provisioned_singleton(section, provisioned)
        if source is not None:
            raise ConfigConflict(f"the {section} section is defined in {source} and is read-only here")
        if not isinstance(raw, Mapping):
            raise ConfigInvalid({"_schema": [f"the {section} section must be a mapping"]})
        existing = self.singleton(section)
        merged = (
            keep_secrets(section, existing, raw) if existing is not None else json.loads(json.dumps(raw, default=str))
        )
        errors = {
            path: ["a masked secret, and no stored one to keep: write it"]
            if get_path(merged, path) == MASK
            else ["may not be empty (there is no stored one to keep)"]
            for path in SECRET_FIELDS[section]
            if get_path(merged, path) in (MASK, "")
        }
        item: Any = None
        try:
            item = validate(section, merged)
        except ConfigInvalid as exc:
            errors = {**exc.errors, **errors}
        if section == "finesse":
            given = bool(merged.get("chat_mrd_id") or merged.get("chat_mrd_name"))
            ece = [i.name for i in self.merged(provisioned).integrations if i.type == "ece"]
            if missing := chat_mrd_missing_for(given, ece):
                _add_errors(errors, {"chat_mrd_id": [missing]})
        if errors:
            raise ConfigInvalid(errors)
        return Stored(json.loads(json.dumps(merged, default=str)), item)

    def save_singleton(self, section: str, raw: Any, provisioned: model.Config) -> Stored:
        """Validate and write a singleton section (created, or replaced), as `prepared_singleton` checks it."""
        prepared = self.prepared_singleton(section, raw, provisioned)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.config_items(section), section, json.dumps(prepared.raw, sort_keys=True))
        pipe.incr(keys.config_version())
        replies.execute(pipe)
        log.info("configuration saved", extra={"kind": section, "item": section})
        return prepared

    def delete_singleton(self, section: str, provisioned: model.Config) -> None:
        """Remove the section made in the UI or API (NotFound if there is none, ConfigConflict if a
        provisioning file defines the section)."""
        _check_singleton(section)
        source = _provisioned_singleton(section, provisioned)
        if source is not None:
            raise ConfigConflict(f"the {section} section is defined in {source} and is read-only here")
        if not self.redis.hexists(keys.config_items(section), section):
            raise NotFound(f"no {section} section made in the UI or API")
        self._remove(section, section)

    # -- Hybrid Chat agents ---------------------------------------------------------------------

    def raw_agent(self, login: str) -> dict[str, Any]:
        """The stored agent of `login` (any case): its raw mapping, `password_hash` included."""
        value = replies.bytes_or_none(self.redis.hget(keys.config_items(AGENTS), agent_key(login)))
        if value is None:
            raise NotFound(f"no hybrid agent {login!r} made in the UI or API")
        item: dict[str, Any] = json.loads(value)  # stored by save_agent(): a JSON object
        return item

    def prepared_agent(
        self, raw: Any, provisioned: model.Config, *, create: bool | None = None, local: bool = False
    ) -> Stored:
        """A Hybrid Chat agent as `save_agent` would write it, without writing. A `password` is
        validated, then hashed (werkzeug's scrypt, as the operator accounts'): the stored mapping has
        `password_hash`, never the password. A password left out, empty, MASK, "set" or "not set" keeps
        the stored hash. `create`: True, the login must be new; False, it must exist; None, either.
        `local`: the agent must end up with a password (the "Add a local agent" form); without a
        finesse: section in effect every agent must. Raises ConfigInvalid naming the field,
        ConfigConflict (a provisioned or taken login) or NotFound."""
        if not isinstance(raw, Mapping):
            raise ConfigInvalid({"_schema": ["an agent must be a mapping"]})
        data: dict[str, Any] = json.loads(json.dumps(raw, default=str))
        login = data.get("login")
        if isinstance(login, str):
            data["login"] = login = login.strip()
        password = data.pop("password", None)
        if isinstance(password, str) and password in KEEP_PASSWORD:
            password = None
        if password is not None:
            data["password"] = password
        existing: bytes | None = None
        conflicts: dict[str, list[str]] = {}
        if isinstance(login, str) and login:
            found = provisioned.hybrid_agent(login)
            if found is not None:
                source = found.source or "a provisioned file"
                conflicts["login"] = [f"hybrid agent {found.login!r} is defined in {source} and is read-only here"]
            existing = replies.bytes_or_none(self.redis.hget(keys.config_items(AGENTS), agent_key(login)))
            if create is True and existing is not None and not conflicts:
                conflicts["login"] = [f"a hybrid agent with login {login!r} already exists"]
            if create is False and existing is None and not conflicts:
                raise NotFound(f"no hybrid agent {login!r} made in the UI or API")
        errors: dict[str, list[str]] = {}
        item: model.HybridAgent | None = None
        try:
            item = validate(AGENTS, data)  # every field named, the password's length too
        except ConfigInvalid as exc:
            errors = dict(exc.errors)
        stored_hash = json.loads(existing).get("password_hash") if existing is not None else None
        stored: dict[str, Any] = {k: v for k, v in data.items() if k != "password" and v is not None}
        if item is not None:
            stored["skills"] = list(item.skills)
            if item.password:
                stored["password_hash"] = generate_password_hash(item.password)
            elif not item.password_hash and stored_hash:
                stored["password_hash"] = stored_hash
        has_password = bool(data.get("password") or data.get("password_hash") or stored_hash)
        merged = self.merged(provisioned)
        if not has_password and (local or merged.finesse is None):
            _add_errors(errors, {"password": ["a local agent needs a password" if local else NO_FINESSE_AGENT_PROBLEM]})
        skills = data.get("skills")
        _add_errors(errors, _agent_skill_errors(skills if isinstance(skills, list) else [], merged.integrations))
        if errors:
            raise ConfigInvalid(_add_errors(errors, conflicts))
        if conflicts:
            raise ConfigConflict("; ".join(m for messages in conflicts.values() for m in messages))
        return Stored(stored, validate(AGENTS, stored))

    def save_agent(
        self, raw: Any, provisioned: model.Config, *, create: bool | None = None, local: bool = False
    ) -> Stored:
        """Validate and write a Hybrid Chat agent, as `prepared_agent` checks it."""
        prepared = self.prepared_agent(raw, provisioned, create=create, local=local)
        key = agent_key(prepared.item.login)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.config_items(AGENTS), key, json.dumps(prepared.raw, sort_keys=True))
        pipe.incr(keys.config_version())
        replies.execute(pipe)
        log.info("configuration saved", extra={"kind": AGENTS, "item": key, "local": prepared.item.local})
        return prepared

    def delete_agent(self, login: str, provisioned: model.Config) -> None:
        """Remove an agent made in the UI or API: a Finesse agent's settings go back to the defaults, a
        local agent can no longer log in. ConfigConflict for a provisioned login, NotFound."""
        found = provisioned.hybrid_agent(login)
        if found is not None:
            source = found.source or "a provisioned file"
            raise ConfigConflict(f"hybrid agent {found.login!r} is defined in {source} and is read-only here")
        key = agent_key(login)
        if not self.redis.hexists(keys.config_items(AGENTS), key):
            raise NotFound(f"no hybrid agent {login!r} made in the UI or API")
        self._remove(AGENTS, key)

    def set_rule_order(self, names: Iterable[str], config: model.Config) -> list[str]:
        """Store the evaluation order; `names` must be exactly the rules of `config`, each once."""
        names = list(names)
        known = [r.name for r in config.rules]
        if sorted(names) != sorted(known):
            missing = sorted(set(known) - set(names))
            unknown = sorted(set(names) - set(known))
            repeated = sorted({n for n in names if names.count(n) > 1})
            parts = [
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(unknown)}" if unknown else "",
                f"repeated {', '.join(repeated)}" if repeated else "",
            ]
            raise ConfigInvalid({"order": ["list every rule once: " + "; ".join(p for p in parts if p)]})
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.config_rule_order())
        if names:
            pipe.rpush(keys.config_rule_order(), *names)
        pipe.incr(keys.config_version())
        replies.execute(pipe)
        return names

    def save_template(self, locale: str, message_type: str, text: str) -> None:
        """A deployment-wide override (validate it with MessageTemplates.validate first)."""
        _check_template_key(locale, message_type)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.config_templates(), f"{locale}/{message_type}", text)
        pipe.incr(keys.config_version())
        replies.execute(pipe)

    def reset_template(self, locale: str, message_type: str) -> bool:
        """Back to the shipped file; False if there was no override."""
        _check_template_key(locale, message_type)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.config_templates(), f"{locale}/{message_type}")
        pipe.incr(keys.config_version())
        removed, _ = replies.execute(pipe)
        return bool(removed)


def ordered_rules(rules: Iterable[model.Rule], order: list[str]) -> list[model.Rule]:
    """Rules in the stored order; those not in it keep their default order, after the ordered ones."""
    position = {name: i for i, name in enumerate(order)}
    indexed = list(enumerate(rules))
    indexed.sort(key=lambda pair: (position.get(pair[1].name, len(position)), pair[0]))
    return [rule for _, rule in indexed]


def _check_template_key(locale: str, message_type: str) -> None:
    errors: dict[str, list[str]] = {}
    if not schemas.LOCALE_PATTERN.match(locale or ""):
        errors["locale"] = ["not a locale like en or pt_BR"]
    if message_type not in schemas.MESSAGE_TYPES:
        errors["type"] = [f"use one of {', '.join(schemas.MESSAGE_TYPES)}"]
    if errors:
        raise ConfigInvalid(errors)


def _add_errors(errors: dict[str, list[str]], more: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """`more` added to `errors` (field by field, in order), so one answer carries every problem."""
    for field_name, messages in more.items():
        errors.setdefault(field_name, []).extend(messages)
    return errors


def _entry_points_in_use(integration: model.Integration, config: model.Config) -> str | None:
    """The refusal of an integration change that drops entry points rules use, or None."""
    rules: list[model.Rule | model.DefaultRule] = [r for r in config.rules if r.action.forward_to == integration.name]
    if config.default_rule is not None and config.default_rule.action.forward_to == integration.name:
        rules.append(config.default_rule)
    gone = [
        f"{r.action.entry_point} (rule {r.name})" for r in rules if not integration.entry_point(r.action.entry_point)
    ]
    return f"entry point(s) still used: {', '.join(gone)}; change those rules first" if gone else None


def agent_key(login: str) -> str:
    """A hybrid agent's key in the store: the login casefolded (logins are case-insensitive)."""
    return login.strip().casefold()


def _queue_skill_errors(integration: model.Integration, agents: Iterable[model.HybridAgent]) -> dict[str, list[str]]:
    """The loader's check of a Hybrid Chat queue's skills against the agents' spellings."""
    problems = skill_spelling_problems(integration, agents)
    return {f"entry_points.{index}.{field}": [message] for index, field, message in problems}


def _agent_skill_errors(skills: Iterable[Any], integrations: Iterable[model.Integration]) -> dict[str, list[str]]:
    """The same from the agent's side: each skill in the spelling the Hybrid Chat queues use (a skill
    that is not text is the schema's to name)."""
    queues: dict[str, tuple[str, str]] = {}
    for integration in integrations:
        if integration.type != "hybrid":
            continue
        for entry_point in integration.entry_points:
            for skill in entry_point.skills:
                queues.setdefault(skill.casefold(), (skill, f"queue {entry_point.name} of {integration.name}"))
    errors: dict[str, list[str]] = {}
    for position, skill in enumerate(skills):
        if not isinstance(skill, str):
            continue
        spelling, where = queues.get(skill.casefold(), (skill, ""))
        if spelling != skill:
            errors[f"skills.{position}"] = [
                f"{where} writes it {spelling!r}: skills are compared exactly, write one spelling"
            ]
    return errors


def _check_singleton(section: str) -> None:
    if section not in SINGLETONS:
        raise ValueError(f"unknown section {section!r}")


def _provisioned_singleton(section: str, provisioned: model.Config) -> str | None:
    found = getattr(provisioned, section)
    return (found.source or "a provisioned file") if found is not None else None


def _provisioned_source(kind: str, key: str, provisioned: model.Config) -> str | None:
    by_kind: dict[str, tuple[Any, ...]] = {
        "integrations": provisioned.integrations,
        "assets": provisioned.assets,
        "rules": provisioned.rules,
        "flows": provisioned.flows,
    }
    items = by_kind[kind]
    found = next((i for i in items if item_key(kind, i) == key), None)
    return (found.source or "a provisioned file") if found is not None else None


def _rules_using(kind: str, key: str, config: model.Config) -> list[str]:
    if kind == "integrations":
        users = [r.name for r in config.rules if r.action.forward_to == key]
        if config.default_rule is not None and config.default_rule.action.forward_to == key:
            users.append(config.default_rule.name)
        return users
    if kind == "assets":
        return [r.name for r in config.rules if f"{r.channel}/{r.asset}" == key]
    if kind == "flows":
        users = [r.name for r in config.rules if r.action.flow == key]
        if config.default_rule is not None and config.default_rule.action.flow == key:
            users.append(config.default_rule.name)
        return users
    return []


def _flow_template_errors(raw: Mapping[str, Any], item: Flow | None, templates_dir: Path) -> dict[str, list[str]]:
    """The templates a flow sends that no locale has. A valid flow is checked as check-config checks
    it; one that does not validate, by each field its schemas validate as a template name (its steps'
    by their kind's schema), so one answer names these beside the schema's errors."""
    if item is not None:
        return flow_template_errors(item, templates_dir)
    errors: dict[str, list[str]] = {}

    def check(schema: type[Schema], data: Any, prefix: str) -> None:
        if not isinstance(data, Mapping):
            return
        for name, field in schema._declared_fields.items():
            value = data.get(name)
            nested = field.nested if isinstance(field, fields.Nested) else None
            if isinstance(nested, type) and issubclass(nested, Schema):
                check(nested, value, f"{prefix}{name}.")
            elif schemas.is_template_field(field) and isinstance(value, str) and schemas.TEMPLATE_NAME.match(value):
                missing = template_missing(value, templates_dir)
                errors.update({f"{prefix}{name}": [missing]} if missing else {})

    check(schemas.FlowSchema, raw, "")
    steps = raw.get("steps")
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        kind = step.get("type") if isinstance(step, Mapping) else None
        if isinstance(kind, str) and kind in schemas.STEP_SCHEMAS:
            check(schemas.STEP_SCHEMAS[kind], step, f"steps.{index}.")
    return errors


def flow_users(flow: str, config: model.Config) -> list[str]:
    """Who runs `flow`: `rule <name>` for each rule naming it, then `entry point <integration>/<entry
    point>` for each entry point naming it (the refusal of its deletion, the UI and the API say these)."""
    found = [f"rule {name}" for name in _rules_using("flows", flow, config)]
    for integration in config.integrations:
        found += [f"entry point {integration.name}/{ep.name}" for ep in integration.entry_points if ep.flow == flow]
    return found


def entry_point_flow_errors(raw: Mapping[str, Any], config: model.Config) -> dict[str, list[str]]:
    """Each entry point of an integration (its raw mapping) that names a flow `config` lacks (a value
    of the wrong type is the schema's to name)."""
    entry_points = raw.get("entry_points")
    errors: dict[str, list[str]] = {}
    for index, entry_point in enumerate(entry_points if isinstance(entry_points, list) else []):
        flow = entry_point.get("flow") if isinstance(entry_point, Mapping) else None
        if isinstance(flow, str) and flow and config.flow(flow) is None:
            errors[f"entry_points.{index}.flow"] = [f"no flow named {flow!r}"]
    return errors
