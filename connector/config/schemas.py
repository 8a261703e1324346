"""Marshmallow schemas for every configurable item; the YAML loader, check-config, the UI and the API
all validate with these, so they show the same messages.

Unknown keys are errors (a typo in a field name must not silently disable a feature). Every check of
a whole item runs even when a field failed (`skip_on_field_errors=False`; marshmallow skips it by default)
and reports each problem it finds, so an operator sees every error of an item in one answer, never one
more after each fix. Such a check sees only the fields that loaded, so it looks at a field only when
it is there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from connector import channels
from connector.config import ece_paths, model
from connector.flows import answers, definition
from connector.flows.bot import BOT_KINDS
from connector.flows.hours import CALENDAR_SCHEMA

CHANNELS = channels.NAMES
MESSAGE_TYPES = (
    "welcome",
    "agent_assigned",
    "transfer_queue",
    "transfer_agent",
    "attachment_accepted",
    "attachment_rejected",
    "agent_closed",
    "customer_inactive",
    "no_agents",
    "entry_point_disabled",
    "queue_status",
    "out_of_hours",
)
NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", error="use 1-64 letters, digits, _ . -")
LOCALE_PATTERN = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")
"""A locale name (`en`, `pt_BR`). Match with this rather than `LOCALE.regex`, typed str-or-bytes by marshmallow."""
LOCALE = validate.Regexp(LOCALE_PATTERN, error="not a locale like en or pt_BR")
URL = validate.URL(schemes={"http", "https"}, require_tld=False)
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}$")
"""A language code (ISO 639-1 `es`; three letters for languages without one), as detection names it."""
LANGUAGE_CODE = validate.Regexp(LANGUAGE_PATTERN, error="a language code like es (ISO 639-1, lower case)")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# -- assets ---------------------------------------------------------------------------------------


class AssetBase(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    default_locale = fields.String(load_default=None, validate=LOCALE)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.Asset:
        common = {"name", "channel", "default_locale"}
        options = {k: v for k, v in data.items() if k not in common}
        return model.Asset(
            name=data["name"],
            channel=data["channel"],
            default_locale=data.get("default_locale"),
            options=options,
        )


class SmsAsset(AssetBase):
    provider = fields.String(load_default="twilio", validate=validate.OneOf(["twilio"]))
    number = fields.String(required=True, validate=validate.Regexp(r"^\+[1-9]\d{4,14}$"))
    account_sid = fields.String(required=True)
    auth_token = fields.String(required=True)
    messaging_service_sid = fields.String(load_default=None)
    api_base_url = fields.String(load_default="https://api.twilio.com", validate=URL)


class MetaAssetFields(AssetBase):
    app_secret = fields.String(required=True)
    verify_token = fields.String(required=True)
    api_base_url = fields.String(load_default="https://graph.facebook.com", validate=URL)
    graph_version = fields.String(load_default="v21.0", validate=validate.Regexp(r"^v\d+\.\d+$", error="like v21.0"))


class MessengerAsset(MetaAssetFields):
    page_id = fields.String(required=True)
    page_access_token = fields.String(required=True)
    human_agent_tag = fields.Boolean(load_default=False)
    # Ask the User Profile API for `locale` too: needs Meta's approval (Business Asset User Profile
    # Access); without it Graph refuses the whole profile call.
    profile_locale = fields.Boolean(load_default=False)


class WhatsAppAsset(MetaAssetFields):
    phone_number_id = fields.String(required=True)
    access_token = fields.String(required=True)
    waba_id = fields.String(load_default=None)


class AppleAsset(AssetBase):
    business_id = fields.String(required=True)
    msp_id = fields.String(required=True)
    secret = fields.String(required=True)
    api_base_url = fields.String(load_default="https://mspgw.push.apple.com", validate=URL)

    @validates_schema(skip_on_field_errors=False)
    def secret_is_base64(self, data: dict[str, Any], **_: Any) -> None:
        import base64
        import binascii

        if "secret" not in data:
            return
        try:
            base64.b64decode(data["secret"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("must be base64, as Apple issues it", "secret") from None


class InAppAsset(AssetBase):
    app_id = fields.String(required=True)
    secret = fields.String(required=True, validate=validate.Length(min=16))
    delivery_url = fields.String(required=True, validate=URL)
    media_hosts = fields.List(fields.String(validate=validate.Length(min=1, max=253)), load_default=list)
    max_attachment_bytes = fields.Integer(load_default=None, validate=validate.Range(min=1))


ASSET_SCHEMAS: dict[str, type[AssetBase]] = {
    "sms": SmsAsset,
    "messenger": MessengerAsset,
    "whatsapp": WhatsAppAsset,
    "apple": AppleAsset,
    "inapp": InAppAsset,
}


def load_asset(data: Any, partial: tuple[str, ...] = ()) -> model.Asset:
    """Validate an asset with the schema of its channel."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["an asset must be a mapping"]})
    channel = data.get("channel")
    schema = ASSET_SCHEMAS.get(channel) if isinstance(channel, str) else None
    if schema is None:
        # No channel, no field list to check against; the fields every asset has are still checked.
        errors: dict[str, Any] = AssetBase(unknown=EXCLUDE).validate(data)
        errors["channel"] = [f"must be one of: {', '.join(CHANNELS)}"]
        raise ValidationError(errors)
    asset: model.Asset = schema().load(data, partial=partial)  # marshmallow's load is unannotated; `make` builds it
    return asset


# -- integrations ---------------------------------------------------------------------------------


class UnavailableSchema(StrictSchema):
    action = fields.String(load_default="discard", validate=validate.OneOf(["discard", "close"]))
    after_seconds = fields.Integer(load_default=300, validate=validate.Range(min=0, max=86400))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.UnavailablePolicy:
        return model.UnavailablePolicy(**data)


SKILL = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", error="a skill is 1-64 letters, digits, _ . -")


def _one_spelling(skills: list[str]) -> None:
    """Skills are compared exactly (an agent's `english` is not a queue's `English`): one list may not
    hold two spellings of one skill, which is always a typo."""
    seen: dict[str, str] = {}
    for skill in skills:
        first = seen.setdefault(skill.casefold(), skill)
        if first != skill:
            raise ValidationError(
                f"{first!r} and {skill!r} differ only in case: skills are compared exactly, write one spelling"
            )


def _off_or_seconds(value: int) -> None:
    """A timeout that 0 turns off; else at least 5 s (as an offer's) and at most a day."""
    if value != 0 and not 5 <= value <= 86400:
        raise ValidationError("0 (off) or 5 to 86400 seconds")


class EntryPointSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))
    """ECE's entry point id (required for ECE); a Hybrid Chat queue's defaults to its name."""
    max_wait_seconds = fields.Integer(load_default=120, validate=validate.Range(min=0))
    unavailable = fields.Nested(UnavailableSchema, load_default=None)
    messages = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    default_locale = fields.String(load_default="en", validate=LOCALE)
    queue_status_after_seconds = fields.Integer(load_default=None, validate=validate.Range(min=1))
    queue_status_interval_seconds = fields.Integer(load_default=None, validate=validate.Range(min=5))
    enabled = fields.Boolean(load_default=True)
    skills = fields.List(fields.String(validate=SKILL), load_default=list, validate=_one_spelling)
    """Hybrid Chat: an agent needs every one to be offered this queue's chats."""
    priority = fields.Integer(load_default=1, validate=validate.Range(min=0, max=1000))
    offer_timeout_seconds = fields.Integer(load_default=30, validate=validate.Range(min=5, max=600))
    inactivity_timeout_seconds = fields.Integer(load_default=900, validate=_off_or_seconds)
    """Hybrid Chat: an accepted chat ends after the customer's silence this long; 0 turns it off."""
    flow = fields.String(load_default=None, validate=NAME)
    """The flow its conversations run first (`flows:`), unless their rule names one."""
    hours = fields.Nested(CALENDAR_SCHEMA, load_default=None)
    """Business hours and holidays, which a flow's `hours` step checks."""

    @validates_schema(skip_on_field_errors=False)
    def known_messages(self, data: dict[str, Any], **_: Any) -> None:
        errors = message_override_errors(data.get("messages") or {})
        if errors:
            raise ValidationError({"messages": errors})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.EntryPoint:
        if data["unavailable"] is None:
            data["unavailable"] = model.UnavailablePolicy()
        data["skills"] = tuple(dict.fromkeys(data["skills"]))
        data["id"] = data["id"] or data["name"]
        messages = data.pop("messages")
        data["messages"] = {k: v for k, v in messages.items() if k in MESSAGE_TYPES}
        data["locale_messages"] = {k: dict(v) for k, v in messages.items() if k not in MESSAGE_TYPES}
        return model.EntryPoint(**data)


def message_override_errors(messages: dict[str, Any]) -> dict[str, list[str]]:
    """Problems of an entry point's `messages:`; keys are message types (text for every locale) or
    locales holding their own {type: text} (`es: {welcome: "Hola"}`), which win for that locale."""
    errors: dict[str, list[str]] = {}
    known = f"use a message type ({', '.join(MESSAGE_TYPES)}) or a locale like es"
    for key, value in messages.items():
        if key in MESSAGE_TYPES:
            if not isinstance(value, str):
                errors[key] = ["must be the template text"]
        elif LOCALE_PATTERN.match(key):
            if not isinstance(value, dict):
                errors[key] = ["a locale holds {message type: template text}"]
                continue
            for inner, text in value.items():
                if inner not in MESSAGE_TYPES:
                    errors[f"{key}.{inner}"] = [f"unknown message type: {known}"]
                elif not isinstance(text, str):
                    errors[f"{key}.{inner}"] = ["must be the template text"]
        else:
            errors[key] = [f"unknown key: {known}"]
    return errors


ATTRIBUTE_EXPR = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+\)$")


class CustomAttributeSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(ATTRIBUTE_EXPR, error="like $(fb.username)"))
    value = fields.String(required=True, validate=validate.Length(min=1, max=500))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.CustomAttribute:
        return model.CustomAttribute(**data)


class CallbackAuthSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(["none", "basic", "bearer"]))
    token = fields.String(load_default=None)
    username = fields.String(load_default=None)
    password = fields.String(load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def complete(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") == "bearer" and "token" in data and not data["token"]:
            raise ValidationError("bearer callback auth needs a token", "token")
        if data.get("type") == "basic" and not (data.get("username") and data.get("password")):
            raise ValidationError("basic callback auth needs username and password", "username")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.CallbackAuth:
        return model.CallbackAuth(**data)


class IntegrationSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.OneOf(["ece", "hybrid"]))
    version = fields.String(load_default=None)
    base_url = fields.String(load_default="", validate=URL)
    """ECE's address (required for ECE); Hybrid Chat runs in the connector and has none."""
    client_key = fields.String(load_default=None)
    client_secret = fields.String(load_default=None)
    callback_auth = fields.Nested(CallbackAuthSchema, load_default=None)
    verify_tls = fields.Boolean(load_default=True)
    ca_bundle = fields.String(load_default=None)
    entry_points = fields.List(fields.Nested(EntryPointSchema), load_default=list)
    custom_attributes = fields.List(fields.Nested(CustomAttributeSchema), load_default=list)
    api_paths = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    max_in_flight = fields.Integer(
        load_default=model.DEFAULT_MAX_IN_FLIGHT,
        validate=validate.Range(min=1, max=1000, error="1 to 1000 calls at once per worker"),
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def ece_needs_its_address(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        """ECE needs its web server's address and each entry point's id; a Hybrid Chat integration
        runs in the connector (no address) and a queue's id defaults to its name."""
        if not isinstance(original, Mapping) or original.get("type") != "ece":
            return
        errors: dict[str, Any] = {}
        if not original.get("base_url"):
            errors["base_url"] = ["an ECE integration needs base_url (ECE's web server)"]
        given = original.get("entry_points")
        missing = {
            index: {"id": ["an ECE entry point needs its id"]}
            for index, raw in enumerate(given if isinstance(given, list) else [])
            if isinstance(raw, Mapping) and not raw.get("id")
        }
        if missing:
            errors["entry_points"] = missing
        if errors:
            raise ValidationError(errors)

    @validates_schema(skip_on_field_errors=False)
    def unique_entry_points(self, data: dict[str, Any], **_: Any) -> None:
        # Beside field errors, an entry point that failed is its loaded fields (a dict), not a model.
        loaded = data.get("entry_points") or []
        names = [ep.name if isinstance(ep, model.EntryPoint) else ep.get("name") for ep in loaded]
        names = [n for n in names if isinstance(n, str)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(f"entry point names repeat: {', '.join(dupes)}", "entry_points")

    @validates_schema(skip_on_field_errors=False)
    def known_api_paths(self, data: dict[str, Any], **_: Any) -> None:
        unknown = ece_paths.unknown_names(data.get("api_paths") or {})
        if unknown:
            raise ValidationError(
                f"unknown ECE path name(s) {', '.join(unknown)}; use {', '.join(sorted(ece_paths.NAMES))} "
                f"or {ece_paths.API_VERSION_KEY}",
                "api_paths",
            )

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.Integration:
        data["entry_points"] = tuple(data["entry_points"])
        data["custom_attributes"] = tuple(data["custom_attributes"])
        if data["callback_auth"] is None:
            data["callback_auth"] = model.CallbackAuth()
        return model.Integration(**data)


# -- rules ----------------------------------------------------------------------------------------


class RuleActionSchema(StrictSchema):
    forward_to = fields.String(required=True)
    entry_point = fields.String(required=True)
    flow = fields.String(load_default=None, validate=NAME)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.RuleAction:
        return model.RuleAction(**data)


RULE_EVENTS = channels.MESSAGE_EVENTS


class RuleSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    event = fields.String(required=True, validate=validate.OneOf(RULE_EVENTS))
    asset = fields.String(required=True)
    keyword = fields.String(load_default=None, validate=validate.Regexp(r"^\S+$", error="one word"))
    language = fields.String(load_default=None, validate=LANGUAGE_CODE)
    """The customer's language (ISO 639-1), detected in the first message (docs/flows.md)."""
    action = fields.Nested(RuleActionSchema, required=True)
    start = fields.Date(load_default=None)
    end = fields.Date(load_default=None)
    status = fields.String(load_default="active", validate=validate.OneOf(["active", "inactive"]))

    @validates_schema(skip_on_field_errors=False)
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        """Fields that contradict each other, each named (an end before the start beside a bad event)."""
        errors: dict[str, list[str]] = {}
        channel = channels.channel_class(data.get("channel") or "")
        expected = channel.message_event if channel else None
        if data.get("event") and expected and data["event"] != expected:
            errors["event"] = [f"{data['channel']} rules use event {expected!r}"]
        if data.get("keyword") and channel is not None and data.get("channel") != "sms":
            errors["keyword"] = ["keywords apply to sms rules only"]
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            errors["end"] = ["end is before start"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.Rule:
        return model.Rule(**data)


class DefaultRuleSchema(StrictSchema):
    name = fields.String(load_default="default", validate=NAME)
    action = fields.Nested(RuleActionSchema, required=True)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.DefaultRule:
        return model.DefaultRule(**data)


# -- media blending (finesse:) ----------------------------------------------------------------------------


class XmppTlsField(fields.Field[str]):
    """`finesse.xmpp_tls`: `starttls` (the default: TLS negotiated on the plain port, as Finesse offers
    it on 5222), `direct` (TLS from the first byte, Finesse's 5223), or `false` / `plain` (plain TCP,
    passwords in clear). The booleans of older files still load: `true` was direct TLS, `false` plain."""

    MODES = {"starttls": "starttls", "direct": "direct", "plain": "plain", "false": "plain", "true": "direct"}
    default_error_messages = {
        "invalid": "must be starttls (default), direct or false (plain TCP: passwords cross the network unencrypted)"
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool):
            return "direct" if value else "plain"
        if isinstance(value, str) and value.strip().lower() in self.MODES:
            return self.MODES[value.strip().lower()]
        raise self.make_error("invalid")


class AgentMapField(fields.Field[dict[str, str]]):
    """`finesse.ece_agents`: the chat side's agent (by `ece_agent_field`) → the Finesse login, as a
    mapping, or as text `alice.ece=alice, 4711=bob` (commas or new lines), as a form sends it."""

    default_error_messages = {"invalid": "must map each ECE agent to a Finesse login: {{ece: login}} or ece=login, ..."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if isinstance(value, str):
            pairs = [p.partition("=") for p in re.split(r"[,\n]", value) if p.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise self.make_error("invalid")
            value = {k.strip(): v.strip() for k, _, v in pairs}
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        found = {str(k).strip(): str(v).strip() for k, v in value.items() if v is not None}
        if len(found) != len(value) or not all(found) or not all(found.values()):
            raise self.make_error("invalid")
        return found


def _media_list_path(value: str) -> None:
    if not value.startswith("/finesse/api/") or "{id}" not in value or value.count("{") != 1:
        raise ValidationError("must be a Finesse API path with {id} for the agent, e.g. /finesse/api/User/{id}/Media")


class FinesseSchema(StrictSchema):
    deployment = fields.String(load_default="ucce", validate=validate.OneOf(["ucce", "uccx"]))
    publisher = fields.String(required=True, validate=URL)
    subscriber = fields.String(load_default=None, validate=URL)
    admin_user = fields.String(required=True)
    admin_password = fields.String(required=True)
    events = fields.String(load_default="xmpp", validate=validate.OneOf(["xmpp", "poll"]))
    xmpp_port = fields.Integer(load_default=None, validate=validate.Range(min=1, max=65535))
    xmpp_tls = XmppTlsField(load_default="starttls")
    not_ready_reason = fields.String(load_default="Handling Chat", validate=validate.Length(min=1))
    max_chats = fields.Integer(load_default=5, validate=validate.Range(min=1, max=100))
    liveness_interval_seconds = fields.Float(load_default=5.0, validate=validate.Range(min=0.05))
    chat_mrd_id = fields.String(load_default=None)
    chat_mrd_name = fields.String(load_default=None, validate=validate.Length(min=1))
    media_list_path = fields.String(load_default="/finesse/api/User/{id}/Media", validate=_media_list_path)
    ece_agent_field = fields.String(load_default="name", validate=validate.OneOf(["name", "id"]))
    ece_agents = AgentMapField(load_default=dict)
    verify_tls = fields.Boolean(load_default=True)
    ca_bundle = fields.String(load_default=None)
    chat_enabled = fields.String(load_default=None)
    sync_interval_seconds = fields.Float(load_default=300.0, validate=validate.Range(min=1))

    @validates_schema(skip_on_field_errors=False)
    def known_policy(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("chat_enabled") is not None:
            try:
                model.ChatEnabledPolicy.parse(data["chat_enabled"])
            except ValueError as exc:
                raise ValidationError(str(exc), "chat_enabled") from None

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.FinesseConfig:
        if data.get("chat_enabled") is None:
            # UCCX does not give synced agents the chat role: an operator chooses who chats there.
            data["chat_enabled"] = "none" if data.get("deployment") == "uccx" else "all"
        return model.FinesseConfig(**data)


PASSWORD_HASH = re.compile(r"^(scrypt|pbkdf2)(:[A-Za-z0-9]+)*\$[^$\s]+\$[0-9a-f]+$")
"""A password hash as werkzeug writes it (the operator accounts' function, connector/auth/users.py),
and as an export writes a local agent's."""
LOGIN = validate.Regexp(r"^[^\s/]{1,128}$", error="a login is 1-128 characters, without spaces or /")


class HybridAgentSchema(StrictSchema):
    """A `hybrid_agents:` item: an agent's Hybrid Chat routing settings by login, and for a local
    agent (no Finesse) the password they log in with: `password` in a provisioning file (`${ENV}`),
    or `password_hash` (what the UI and API keep, and what an export writes)."""

    login = fields.String(required=True, validate=LOGIN)
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=128))
    skills = fields.List(fields.String(validate=SKILL), load_default=list, validate=_one_spelling)
    max_chats = fields.Integer(load_default=None, validate=validate.Range(min=1, max=100))
    password = fields.String(load_default=None, validate=validate.Length(min=8, max=256))
    password_hash = fields.String(
        load_default=None,
        validate=validate.Regexp(
            PASSWORD_HASH, error="not a password hash (scrypt:... or pbkdf2:...): write a clear one in password"
        ),
    )

    @validates_schema(skip_on_field_errors=False)
    def one_password(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("password") and data.get("password_hash"):
            raise ValidationError("give password or password_hash, not both", "password_hash")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> model.HybridAgent:
        data["skills"] = tuple(dict.fromkeys(data["skills"]))
        return model.HybridAgent(**data)


# -- conversation flows (flows:) -----------------------------------------------------------------------

TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A flow's template: a file name under message_templates/<locale>/ (without .txt.j2)."""
ATTRIBUTE_NAME = validate.Regexp(
    r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$", error="letters, digits, _ and . (like order_number)"
)
STEP_TYPES = ("ask",)
"""The step kinds this version runs; a kind is listed only once the connector runs it."""


def _template(value: str) -> None:
    if not TEMPLATE_NAME.match(value):
        raise ValidationError("a template name: lower-case letters, digits and _ (like ask_order_number)")
    if value in MESSAGE_TYPES:
        raise ValidationError(f"{value!r} is a system message of its own: name a template of the flow's")


def is_template_field(field: fields.Field[Any]) -> bool:
    """Whether `field` holds a template name of a flow (validated by `_template`): the config store
    checks that such a template exists even while the rest of its step does not validate."""
    validators = field.validators if isinstance(field.validators, list) else []
    return _template in validators


class AskStepSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.OneOf(STEP_TYPES))
    question = fields.String(required=True, validate=_template)
    attribute = fields.String(required=True, validate=ATTRIBUTE_NAME)
    answer = fields.String(load_default="text", validate=validate.OneOf(answers.ANSWER_KINDS))
    pattern = fields.String(load_default=None, validate=validate.Length(min=1, max=500))
    choices = fields.List(fields.String(validate=validate.Length(min=1, max=80)), load_default=list)
    attempts = fields.Integer(load_default=3, validate=validate.Range(min=1, max=10))
    retry = fields.String(load_default=None, validate=_template)

    @validates_schema(skip_on_field_errors=False)
    def answer_fits(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if data.get("answer") == "regex":
            if not data.get("pattern"):
                errors["pattern"] = ["a regex answer needs a pattern"]
            elif problem := answers.pattern_problem(data["pattern"]):
                errors["pattern"] = [problem]
        elif data.get("pattern") and data.get("answer"):
            errors["pattern"] = ["only a regex answer has a pattern"]
        choices = data.get("choices") or []
        if data.get("answer") == "choices" and len(choices) < 2:
            errors["choices"] = ["a choices answer needs at least two choices"]
        elif choices and data.get("answer") not in (None, "choices"):
            errors["choices"] = ["only a choices answer has choices"]
        elif len({" ".join(c.split()).casefold() for c in choices}) != len(choices):
            errors["choices"] = ["two choices read the same"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.AskStep:
        data["choices"] = tuple(data["choices"])
        return definition.AskStep(**data)


class LanguageStepSchema(StrictSchema):
    """`{name, type: language}`: detect the customer's language, set the conversation's locale."""

    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Equal("language"))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.LanguageStep:
        return definition.LanguageStep(**data)


class ConditionSchema(StrictSchema):
    """A branch's `when:` (a rule's `language:` is the same test)."""

    language = fields.String(load_default=None, validate=LANGUAGE_CODE)
    attribute = fields.Dict(
        keys=fields.String(validate=ATTRIBUTE_NAME),
        values=fields.String(validate=validate.Length(min=1, max=200)),
        load_default=dict,
    )

    @validates_schema(skip_on_field_errors=True)
    def something(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("language") is None and not data.get("attribute"):
            raise ValidationError("say what to test: language, attribute, or both")

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.Condition:
        return definition.Condition(data["language"], tuple(sorted(data["attribute"].items())))


class BranchSchema(StrictSchema):
    when = fields.Nested(ConditionSchema, required=True)
    entry_point = fields.String(required=True, validate=validate.Length(min=1, max=200))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.Branch:
        return definition.Branch(**data)


class BranchStepSchema(StrictSchema):
    """`{name, type: branch, branch: [{when, entry_point}, ...]}`: the first that holds wins."""

    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Equal("branch"))
    branch = fields.List(fields.Nested(BranchSchema), required=True, validate=validate.Length(min=1, max=20))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.BranchStep:
        return definition.BranchStep(name=data["name"], branches=tuple(data["branch"]))


class HoursStepSchema(StrictSchema):
    """`{name, type: hours, closed: discard|route, calendar?}`: without its own calendar, the step
    checks the `hours:` of the entry point the conversation goes to."""

    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Equal("hours"))
    closed = fields.String(load_default="discard", validate=validate.OneOf(definition.HOURS_CLOSED))
    calendar = fields.Nested(CALENDAR_SCHEMA, load_default=None)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.HoursStep:
        return definition.HoursStep(**data)


class VerifyStepSchema(StrictSchema):
    """`{name, type: verify, url, secret, timeout?, failed?}`: the identity service's call
    (docs/protocols/bots.md, "Identity service")."""

    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Equal("verify"))
    url = fields.String(required=True, validate=URL)
    secret = fields.String(required=True, validate=validate.Length(min=16))
    timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.5, max=30))
    failed = fields.String(load_default=None, validate=_template)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.VerifyStep:
        return definition.VerifyStep(**data)


class BotStepSchema(StrictSchema):
    """`{name, type: bot, url, kind?, secret?, timeout?, tries?, keyword?}`: a chatbot
    (docs/protocols/bots.md); our contract needs a secret, Rasa's REST channel none."""

    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.Equal("bot"))
    url = fields.String(
        required=True,
        validate=URL,
        metadata={"description": "where each customer message is POSTed (Rasa: its /webhooks/rest/webhook)"},
    )
    kind = fields.String(
        load_default="connector",
        validate=validate.OneOf(BOT_KINDS),
        metadata={"description": "`connector`: our signed JSON contract; `rasa`: Rasa's REST channel"},
    )
    secret = fields.String(
        load_default=None,
        validate=validate.Length(min=16),
        metadata={"description": "HMAC-SHA256 key of X-Connector-Signature (our contract requires it)"},
    )
    timeout = fields.Float(
        load_default=5.0,
        validate=validate.Range(min=0.5, max=30),
        metadata={"description": "seconds per call; a bot that times out on every try hands over"},
    )
    tries = fields.Integer(
        load_default=2,
        validate=validate.Range(min=1, max=10),
        metadata={"description": "calls per customer message before the bot counts as down (it hands over)"},
    )
    keyword = fields.String(
        load_default=definition.BOT_KEYWORD,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "what the customer types to hand over to an agent"},
    )

    @validates_schema(skip_on_field_errors=False)
    def signed(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("kind", "connector") == "connector" and "secret" in data and not data["secret"]:
            raise ValidationError({"secret": ["our contract is signed: set the secret the bot checks"]})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.BotStep:
        return definition.BotStep(**data)


STEP_SCHEMAS: dict[str, type[Schema]] = {
    "ask": AskStepSchema,
    "language": LanguageStepSchema,
    "branch": BranchStepSchema,
    "hours": HoursStepSchema,
    "verify": VerifyStepSchema,
    "bot": BotStepSchema,
}
"""Each step kind's schema by its `type`: `FlowSchema` loads a step with its kind's, and the operator
UI's flow editor lists the kinds and their fields from here (connector/operations/flows.py). A new
kind registers its schema here; nothing else names the kinds."""


class StepField(fields.Field[Any]):
    """One step, loaded by the schema of its `type` (STEP_SCHEMAS), its errors under its own fields."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, Mapping):
            raise ValidationError("a step is a mapping with a type, like {name: order, type: ask, ...}")
        kind = value.get("type")
        if kind is None:
            raise ValidationError({"type": ["Missing data for required field."]})
        schema = STEP_SCHEMAS.get(kind) if isinstance(kind, str) else None
        if schema is None:  # the words marshmallow's OneOf uses, as for every other field
            raise ValidationError({"type": [f"Must be one of: {', '.join(STEP_SCHEMAS)}."]})
        try:
            return schema().load(value)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class SurveySchema(StrictSchema):
    """A flow's post-chat survey (docs/flows.md, "Post-chat survey")."""

    question = fields.String(required=True, validate=_template)
    scale = fields.Integer(load_default=5, validate=validate.Range(min=2, max=10))
    choices = fields.List(fields.String(validate=validate.Length(min=1, max=80)), load_default=list)
    retry = fields.String(load_default=None, validate=_template)
    comment = fields.String(load_default=None, validate=_template)
    thanks = fields.String(load_default=None, validate=_template)
    timeout_seconds = fields.Integer(load_default=3600, validate=validate.Range(min=10, max=7 * 24 * 3600))

    @validates_schema(skip_on_field_errors=False)
    def choices_fit(self, data: dict[str, Any], **_: Any) -> None:
        choices = data.get("choices") or []
        if len(choices) == 1:
            raise ValidationError({"choices": ["a survey with choices needs at least two (worst first)"]})
        if len({" ".join(c.split()).casefold() for c in choices}) != len(choices):
            raise ValidationError({"choices": ["two choices read the same"]})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.Survey:
        data["choices"] = tuple(data["choices"])
        return definition.Survey(**data)


class FlowSchema(StrictSchema):
    name = fields.String(required=True, validate=NAME)
    steps = fields.List(StepField(), required=True, validate=validate.Length(min=0, max=20))
    on_fail = fields.String(load_default="route", validate=validate.OneOf(definition.ON_FAIL))
    closing = fields.String(load_default=None, validate=_template)
    survey = fields.Nested(SurveySchema, load_default=None)
    """Asked after the agent closes the conversation; a flow may be only a survey (`steps: []`)."""

    @validates_schema(skip_on_field_errors=False)
    def consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        seen: set[str] = set()
        for index, step in enumerate(data.get("steps") or []):
            name = getattr(step, "name", None)
            if not isinstance(name, str):
                continue  # it failed its own validation, reported by its fields
            if name in seen:
                errors[f"steps.{index}.name"] = [f"another step is named {name!r}"]
            seen.add(name)
        if "steps" in data and not data["steps"] and not data.get("survey"):
            errors["steps"] = ["a flow needs steps, a survey, or both"]
        if data.get("closing") and data.get("on_fail") != "close":
            errors["closing"] = ["only a flow with on_fail: close sends a closing message"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> definition.Flow:
        data["steps"] = tuple(data["steps"])
        return definition.Flow(**data)


def flow_templates(flow: definition.Flow) -> list[tuple[str, str]]:
    """(dotted field, template name) of every template `flow` sends, for the check that each exists."""
    asks = [(i, s) for i, s in enumerate(flow.steps) if isinstance(s, definition.AskStep)]
    found = [(f"steps.{i}.question", s.question) for i, s in asks]
    found += [(f"steps.{i}.retry", s.retry) for i, s in asks if s.retry]
    verifies = [(i, s) for i, s in enumerate(flow.steps) if isinstance(s, definition.VerifyStep)]
    found += [(f"steps.{i}.failed", s.failed) for i, s in verifies if s.failed]
    if flow.closing:
        found.append(("closing", flow.closing))
    if survey := flow.survey:
        named = {"question": survey.question, "retry": survey.retry, "comment": survey.comment, "thanks": survey.thanks}
        found += [(f"survey.{field}", name) for field, name in named.items() if name]
    return found


class FileSchema(StrictSchema):
    """One provisioning file: every section optional, items validated one by one by the loader."""

    integrations = fields.List(fields.Raw(), load_default=list)
    assets = fields.List(fields.Raw(), load_default=list)
    rules = fields.List(fields.Raw(), load_default=list)
    default_rule = fields.Raw(load_default=None)
    finesse = fields.Raw(load_default=None)
    hybrid_agents = fields.List(fields.Raw(), load_default=list)
    flows = fields.List(fields.Raw(), load_default=list)
