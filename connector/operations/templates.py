"""The message template editor, shared by the operator UI and the API: for each message type by
locale by scope (deployment-wide, or one entry point), the text in effect and where it comes from;
preview; save and reset of overrides; "send as test" in the sandbox.

Invariants:
- What a cell shows is what the relay would use: the text comes from `MessageTemplates.source`
  with the merged configuration, the same call `relay/system_messages.render` makes; the origin is
  found by asking `source` again with fewer layers, never by re-implementing the selection.
- Locales are the `message_templates/` folders plus the locales of deployment-wide overrides: the
  set the relay resolves a customer's locale against. An entry point override for another locale
  would never be used, so it is refused.
- An override is validated (`MessageTemplates.validate`) before it is written; an empty text is
  allowed and turns the message off.
- Deployment overrides live in `ConfigOverrides.save_template`; entry point overrides in the UI
  integration's raw item (`entry_points[i].messages`), written through `ConfigOverrides.save` so the
  schema checks them. Entry points of provisioned integrations are read-only.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from connector.channels import channel_class
from connector.channels.sending import OutboundText, Recipient
from connector.config import model
from connector.config.overrides import ConfigConflict, ConfigInvalid, NotFound
from connector.config.schemas import LOCALE_PATTERN, MESSAGE_TYPES
from connector.errors import PermanentError, RetryableError
from connector.messages.context import MessageContext, customer_context, entry_point_context, sample_context
from connector.messages.templates import MessageTemplates, TemplateError
from connector.messages.text import split_text
from connector.relay.system_messages import templates_of
from connector.runtime import Runtime

ORIGINS = {
    "entry_point": "entry point override",
    "deployment": "deployment override",
    "file": "shipped file",
    "none": "no template (off)",
}
"""Where the text in effect comes from → how the UI names it."""
OVERRIDE_ORIGINS = frozenset({"entry_point", "deployment"})
"""Origins whose `where` already names the override ("deployment override (en)")."""


class SendTestUnavailable(Exception):
    """ "Send as test" is refused in this deployment (it is a sandbox feature); says why."""


class SendTestFailed(Exception):
    """The channel refused or could not take the test message; the text is the provider's reason."""


@dataclass(frozen=True)
class Scope:
    """Deployment-wide (both None) or one entry point of one integration."""

    integration: str | None = None
    entry_point: str | None = None

    @classmethod
    def of(cls, integration: str | None, entry_point: str | None) -> Scope:
        integration, entry_point = (integration or "").strip() or None, (entry_point or "").strip() or None
        if (integration is None) != (entry_point is None):
            missing = "entry_point" if entry_point is None else "integration"
            raise ConfigInvalid({missing: ["give both integration and entry_point, or neither (deployment-wide)"]})
        return cls(integration, entry_point)

    @property
    def deployment(self) -> bool:
        return self.integration is None

    @property
    def label(self) -> str:
        return "deployment-wide" if self.deployment else f"entry point {self.integration} / {self.entry_point}"


@dataclass(frozen=True)
class Cell:
    """One message type in one locale at one scope."""

    message_type: str
    locale: str
    scope: Scope
    text: str
    """The template text in effect."""
    origin: str
    """A key of ORIGINS."""
    where: str
    """The exact layer ("message_templates/en/welcome.txt.j2", "entry point Support override (es)")."""
    override: str | None
    """The override this scope holds for the cell: None, "locale" or (entry points) "all locales"."""
    inherited: str
    """The text in effect without this scope's override: what "reset to default" brings back."""
    inherited_where: str
    read_only: str | None = None
    """The file that defines the scope's entry point, when it is provisioned."""

    @property
    def off(self) -> bool:
        return not self.text.strip()

    @property
    def label(self) -> str:
        """Where the text in effect comes from, said once: an override's layer names its kind itself
        ("deployment override (en)", "entry point Support override"), a file's kind is ORIGINS'."""
        return self.where if self.origin in OVERRIDE_ORIGINS else ORIGINS[self.origin]

    @property
    def detail(self) -> str | None:
        """What the page shows beside `label`: the file (or the files not found); None for an override,
        whose label says it all."""
        return None if self.origin in OVERRIDE_ORIGINS else self.where


@dataclass(frozen=True)
class SentTest:
    asset: str
    customer: str
    text: str
    parts: int
    look_at: str | None
    """The sandbox customer page where the message shows, when it can be told."""


@dataclass(frozen=True)
class EntryPointRef:
    integration: model.Integration
    entry_point: model.EntryPoint

    @property
    def scope(self) -> Scope:
        return Scope(self.integration.name, self.entry_point.name)


class TemplateEditor:
    """The editor over one runtime; every read takes the merged configuration as it is now."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.templates: MessageTemplates = templates_of(runtime)

    # -- reading --------------------------------------------------------------------------------

    def locales(self, config: model.Config | None = None) -> list[str]:
        config = config or self.runtime.config
        return sorted({*self.templates.locales(), *config.templates})

    def entry_points(self, config: model.Config | None = None) -> list[EntryPointRef]:
        config = config or self.runtime.config
        return [EntryPointRef(i, ep) for i in config.integrations for ep in i.entry_points]

    def matrix(self, scope: Scope) -> dict[str, dict[str, Cell]]:
        """message type → locale → cell, for every type and locale."""
        config = self.runtime.config
        found = self._find(config, scope)
        locales = self.locales(config)
        return {t: {loc: self._cell(config, scope, found, t, loc) for loc in locales} for t in MESSAGE_TYPES}

    def cell(self, scope: Scope, message_type: str, locale: str) -> Cell:
        config = self.runtime.config
        found = self._find(config, scope)
        self._check_key(config, scope, message_type, locale)
        return self._cell(config, scope, found, message_type, locale)

    def _cell(
        self, config: model.Config, scope: Scope, found: EntryPointRef | None, message_type: str, locale: str
    ) -> Cell:
        overrides = config.templates
        entry_point = found.entry_point if found else None
        text, where = self.templates.source(message_type, locale, entry_point, overrides)
        deployment_text, deployment_where = self.templates.source(message_type, locale, None, overrides)
        _, file_where = self.templates.source(message_type, locale, None, None)
        if entry_point is not None and where != deployment_where:
            origin, inherited, inherited_where = "entry_point", deployment_text, deployment_where
        elif where != file_where:
            origin = "deployment"
            inherited, inherited_where = self.templates.source(message_type, locale, None, None)
        else:
            origin = "file" if text or not where.startswith("no file") else "none"
            inherited, inherited_where = text, where
        if entry_point is None:
            override = "locale" if message_type in overrides.get(locale, {}) else None
        elif message_type in entry_point.locale_messages.get(locale, {}):
            override = "locale"
        else:
            override = "all locales" if message_type in entry_point.messages else None
        return Cell(
            message_type=message_type,
            locale=locale,
            scope=scope,
            text=text,
            origin=origin,
            where=where,
            override=override,
            inherited=inherited,
            inherited_where=inherited_where,
            read_only=found.integration.source if found else None,
        )

    # -- preview --------------------------------------------------------------------------------

    def sample(self, message_type: str, locale: str, scope: Scope | None = None) -> MessageContext:
        """The sample context of `message_type`, in `locale`, naming the scope's entry point."""
        context = sample_context(message_type)
        context = replace(context, customer={**context.customer, "locale": locale})
        found = self._find(self.runtime.config, scope) if scope is not None else None
        if found is not None:
            context = replace(context, entry_point=entry_point_context(found.entry_point))
        return context

    def text_errors(self, text: str) -> dict[str, list[str]]:
        """The template's own problem as a field error ({"text": [...]}), or none: told beside the
        cell's other errors, so one answer names them all."""
        try:
            self.templates.validate(text)
        except TemplateError as exc:
            return {"text": [str(exc)]}
        return {}

    def preview(self, message_type: str, locale: str, text: str, scope: Scope | None = None) -> str:
        """What `text` renders to with the sample context ("" = the message is off). Raises
        TemplateError (with its line) exactly when saving would be refused."""
        if message_type not in MESSAGE_TYPES:
            raise ConfigInvalid({"type": [f"use one of {', '.join(MESSAGE_TYPES)}"]})
        if not LOCALE_PATTERN.match(locale or ""):
            raise ConfigInvalid({"locale": ["not a locale like en or pt_BR"]})
        self.templates.validate(text)
        return self.templates.render_source(text, self.sample(message_type, locale, scope))

    # -- writing --------------------------------------------------------------------------------

    def save(self, scope: Scope, message_type: str, locale: str, text: str, *, all_locales: bool = False) -> Cell:
        """Write the override of one cell (validated first; "" turns the message off).

        `all_locales` (entry points only) writes the type key that serves every locale, and drops
        this locale's own override so the saved text is the one in effect for the cell edited."""
        config = self.runtime.config
        found = self._find(config, scope)
        self._check_key(config, scope, message_type, locale, all_locales=all_locales and found is None)
        self.check_writable(scope)
        self.templates.validate(text)
        if found is None:
            self.runtime.overrides.save_template(locale, message_type, text)
        else:

            def write(messages: dict[str, Any]) -> None:
                localized = dict(messages.get(locale) or {})
                if all_locales:
                    messages[message_type] = text
                    localized.pop(message_type, None)
                else:
                    localized[message_type] = text
                if localized:
                    messages[locale] = localized
                else:
                    messages.pop(locale, None)

            self._edit_entry_point(found, write)
        self.runtime.config_changed()
        return self.cell(scope, message_type, locale)

    def reset(self, scope: Scope, message_type: str, locale: str) -> tuple[Cell, str | None]:
        """Remove the scope's override in effect for the cell (an entry point's locale override first,
        else its every-locale one); returns the cell now and what was removed (None: nothing)."""
        before = self.cell(scope, message_type, locale)
        self.check_writable(scope)
        if before.override is None:
            return before, None
        found = self._find(self.runtime.config, scope)
        if found is None:
            self.runtime.overrides.reset_template(locale, message_type)
        else:

            def remove(messages: dict[str, Any]) -> None:
                if before.override == "locale":
                    localized = dict(messages.get(locale) or {})
                    localized.pop(message_type, None)
                    if localized:
                        messages[locale] = localized
                    else:
                        messages.pop(locale, None)
                else:
                    messages.pop(message_type, None)

            self._edit_entry_point(found, remove)
        self.runtime.config_changed()
        return self.cell(scope, message_type, locale), before.override

    def _edit_entry_point(self, found: EntryPointRef, change: Any) -> None:
        store = self.runtime.overrides
        raw = store.raw("integrations", found.integration.name)
        entry = next((ep for ep in raw.get("entry_points") or [] if ep.get("name") == found.entry_point.name), None)
        if entry is None:  # the cached config is behind the store: the entry point was just removed
            raise NotFound(f"integration {found.integration.name!r} has no entry point {found.entry_point.name!r}")
        messages = dict(entry.get("messages") or {})
        change(messages)
        entry["messages"] = messages
        store.save("integrations", raw, self.runtime.provisioned, create=False)

    # -- send as test ---------------------------------------------------------------------------

    def send_test(
        self, scope: Scope, message_type: str, locale: str, asset_key: str, customer: str | None = None
    ) -> SentTest:
        """Render the text in effect for the cell with the sample context and send it, as a system
        message, through `asset_key`'s ("channel/name") real send path to a sandbox test customer."""
        if not self.runtime.settings.sandbox:
            raise SendTestUnavailable(
                "send as test works only in the sandbox (python -m connector run --sandbox): "
                "here it would message a real customer"
            )
        config = self.runtime.config
        channel, _, name = (asset_key or "").partition("/")
        asset = config.asset(channel, name)
        cls = channel_class(channel)
        if asset is None or cls is None:
            raise ConfigInvalid({"asset": [f"no asset {asset_key!r}: use channel/name, like sms/support-sms"]})
        address = (customer or "").strip() or cls.example_address
        cell = self.cell(scope, message_type, locale)
        context = self.sample(message_type, locale, scope)
        context = replace(
            context, customer=customer_context(channel, address, name="Alex Morgan", locale=locale, details={})
        )
        text = self.templates.render_source(cell.text, context)
        parts = split_text(text, cls.max_text)
        if not parts:
            raise ConfigInvalid(
                {"text": ["this message is off (its template is empty or renders nothing): nothing to send"]}
            )
        sender = cls(asset, self.runtime.settings)
        key = f"template-test:{secrets.token_hex(8)}"
        try:
            for index, part in enumerate(parts):
                sender.send(Recipient(address=address), OutboundText(part, system=True), key=f"{key}:{index}")
        except (RetryableError, PermanentError) as exc:
            raise SendTestFailed(f"{channel} asset {name!r} could not send: {exc}") from None
        return SentTest(asset=asset_key, customer=address, text=text, parts=len(parts), look_at=_customer_page(asset))

    # -- lookups --------------------------------------------------------------------------------

    def _find(self, config: model.Config, scope: Scope | None) -> EntryPointRef | None:
        if scope is None or scope.deployment:
            return None
        integration = config.integration(scope.integration or "")
        if integration is None:
            raise NotFound(f"no integration named {scope.integration!r}")
        entry_point = integration.entry_point(scope.entry_point or "")
        if entry_point is None:
            raise NotFound(f"integration {integration.name!r} has no entry point named {scope.entry_point!r}")
        return EntryPointRef(integration, entry_point)

    def _check_key(
        self, config: model.Config, scope: Scope, message_type: str, locale: str, *, all_locales: bool = False
    ) -> None:
        """Every problem of the cell's key at once (`all_locales`: asked of a deployment-wide cell)."""
        errors: dict[str, list[str]] = {}
        if all_locales:
            errors["all_locales"] = ["only entry point overrides can serve every locale"]
        if message_type not in MESSAGE_TYPES:
            errors["type"] = [f"use one of {', '.join(MESSAGE_TYPES)}"]
        if not LOCALE_PATTERN.match(locale or ""):
            errors["locale"] = ["not a locale like en or pt_BR"]
        elif not scope.deployment and locale not in self.locales(config):
            errors["locale"] = [
                f"no templates in {locale} yet: add message_templates/{locale}/ or a deployment-wide "
                f"override in {locale} first (the relay only writes in those locales)"
            ]
        if errors:
            raise ConfigInvalid(errors)

    def check_writable(self, scope: Scope) -> None:
        """ConfigConflict naming the file when the scope's entry point is provisioned."""
        found = self._find(self.runtime.config, scope)
        if found is not None and found.integration.source is not None:
            raise ConfigConflict(
                f"entry point {found.entry_point.name!r} of integration {found.integration.name!r} is defined in "
                f"{found.integration.source} and is read-only here: change it there, or override the message "
                "deployment-wide"
            )


def _customer_page(asset: model.Asset) -> str | None:
    """The sandbox customer page of the simulator `asset` points at ({origin}/customer/)."""
    url = asset.get("api_base_url") or asset.get("delivery_url")
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/customer/" if parts.scheme and parts.netloc else None


__all__ = [
    "ORIGINS",
    "Cell",
    "EntryPointRef",
    "Scope",
    "SendTestFailed",
    "SendTestUnavailable",
    "SentTest",
    "TemplateEditor",
    "TemplateError",
]
