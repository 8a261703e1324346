"""What the operator's flows page and the flows API share: each flow with where it comes from and
who names it, the step kinds described from their schemas, and the editor's form ↔ YAML shape.

Invariants:
- No step kind is named here: the kinds, their fields, defaults and allowed values are read from
  `schemas.STEP_SCHEMAS` (and the flow's other blocks, like `survey`, from `FlowSchema`), so a kind
  added there shows in the editor's reference without a change to the UI.
- The steps are edited as YAML text; what the text parses to is validated by the config store, like
  an item of the API, so the form and the API answer with the same messages on the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from marshmallow import Schema, fields, missing, validate

from connector.config import model, raw, schemas
from connector.config.overrides import flow_users, masked

KIND = "flows"
FORM_FIELDS = ("name", "on_fail", "closing", "steps")
"""The flow's fields the form has an input of its own for; every other (`survey`, ...) is edited
as YAML in "More settings"."""


@dataclass(frozen=True)
class FlowRow:
    """One flow as the list shows it and the API answers with it."""

    name: str
    fields: dict[str, Any]
    """The flow's raw mapping (the YAML shape)."""
    source: str | None
    """The provisioning file that defines it, None for a flow made in the UI or API."""
    used_by: tuple[str, ...]
    """`rule <name>` and `entry point <integration>/<entry point>` naming it."""

    @property
    def read_only(self) -> bool:
        return self.source is not None


def users(config: model.Config, name: str) -> tuple[str, ...]:
    return tuple(flow_users(name, config))


def listing(config: model.Config) -> list[FlowRow]:
    """Every flow, its steps' secrets shown as MASK (the UI, the API)."""
    return [FlowRow(f.name, masked(KIND, raw.flow(f)), f.source, users(config, f.name)) for f in config.flows]


def row(config: model.Config, name: str) -> FlowRow | None:
    return next((r for r in listing(config) if r.name == name), None)


# -- the reference beside the editor: step kinds and their fields, from the schemas ------------------


@dataclass(frozen=True)
class FieldDoc:
    name: str
    required: bool
    default: Any
    """The value a field left out takes (None: none)."""
    choices: tuple[str, ...]
    """The values it allows, where the schema names them."""
    shape: str
    """`text`, `number`, `true/false`, `list`, `mapping`."""


@dataclass(frozen=True)
class KindDoc:
    name: str
    fields: tuple[FieldDoc, ...]


def _shape(field: fields.Field[Any]) -> str:
    if isinstance(field, fields.List):
        return "list"
    if isinstance(field, fields.Nested | fields.Dict):
        return "mapping"
    if isinstance(field, fields.Boolean):
        return "true/false"
    if isinstance(field, fields.Integer | fields.Float | fields.Decimal):
        return "number"
    return "text"


def _field_docs(schema: type[Schema], skip: tuple[str, ...] = ()) -> tuple[FieldDoc, ...]:
    found = []
    for name, field in schema._declared_fields.items():
        if name in skip:
            continue
        default = field.load_default
        default = None if callable(default) or default is missing else default
        validators = field.validators if isinstance(field.validators, list) else []
        choices = next((tuple(str(c) for c in v.choices) for v in validators if isinstance(v, validate.OneOf)), ())
        found.append(FieldDoc(name, field.required, default, choices, _shape(field)))
    required = [f for f in found if f.required]
    return tuple(required + [f for f in found if not f.required])


def step_kinds() -> list[KindDoc]:
    """Every step kind the connector runs, with its fields (required first), from STEP_SCHEMAS."""
    return [KindDoc(kind, _field_docs(schema, skip=("type",))) for kind, schema in schemas.STEP_SCHEMAS.items()]


def more_settings() -> list[KindDoc]:
    """The flow's blocks edited under "More settings" (e.g. `survey`), with their fields."""
    found = []
    for name, field in schemas.FlowSchema._declared_fields.items():
        if name in FORM_FIELDS:
            continue
        nested = field.nested if isinstance(field, fields.Nested) else None
        shown = _field_docs(nested) if isinstance(nested, type) and issubclass(nested, Schema) else ()
        found.append(KindDoc(name, shown))
    return found


def on_fail_choices() -> tuple[str, ...]:
    field = schemas.FlowSchema._declared_fields["on_fail"]
    validators = field.validators if isinstance(field.validators, list) else []
    return next((tuple(str(c) for c in v.choices) for v in validators if isinstance(v, validate.OneOf)), ())


# -- the form ----------------------------------------------------------------------------------------


def to_yaml(value: Any) -> str:
    """A value as the editor shows it: block YAML, keys in the order written."""
    if value in (None, [], {}):
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


def form_of(flow: dict[str, Any]) -> dict[str, str]:
    """A flow's raw mapping as the form's text fields."""
    more = {k: v for k, v in flow.items() if k not in FORM_FIELDS and v is not None}
    return {
        "name": str(flow.get("name") or ""),
        "on_fail": str(flow.get("on_fail") or "route"),
        "closing": str(flow.get("closing") or ""),
        "steps": to_yaml(flow.get("steps")),
        "more": to_yaml(more),
    }


def parse_yaml_field(text: str, field: str, errors: dict[str, list[str]]) -> Any:
    """A form's YAML text field: what it parses to (None when empty), or None with the reason under
    `field` in `errors` (line and column), for forms that edit part of an item as YAML."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        errors.setdefault(field, []).append(f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}")
        return None


def raw_of(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form as the YAML shape, and what its text fields could not be read as (YAML errors, a
    steps text that is not a list). The raw shape is validated by the store, beside these."""
    errors: dict[str, list[str]] = {}
    flow: dict[str, Any] = {"name": form.get("name", "").strip(), "on_fail": form.get("on_fail", "route")}
    if closing := form.get("closing", "").strip():
        flow["closing"] = closing
    steps = parse_yaml_field(form.get("steps", ""), "steps", errors)
    if steps is None and "steps" not in errors:
        steps = []
    if not isinstance(steps, list) and "steps" not in errors:
        errors["steps"] = ["write the steps as a YAML list: each step starts with '- name: ...'"]
    flow["steps"] = steps if isinstance(steps, list) else []
    more = parse_yaml_field(form.get("more", ""), "more", errors)
    if more is not None and not isinstance(more, dict):
        errors.setdefault("more", []).append("write more settings as a YAML mapping, like 'survey: {question: ...}'")
    elif isinstance(more, dict):
        for key, value in more.items():
            if str(key) in FORM_FIELDS:
                errors.setdefault("more", []).append(f"{key} has its own field above: set it there")
            else:
                flow[str(key)] = value
    return flow, errors


def step_summary(step: dict[str, Any]) -> str:
    """A step's fields but its name and type, as `key: value` pairs, for the numbered list."""
    parts = []
    for key, value in step.items():
        if key in ("name", "type"):
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{key}: {shown}")
    return "; ".join(parts)
