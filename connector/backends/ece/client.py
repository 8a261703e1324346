"""The ECE client: token, entry point configuration, availability, and the conversation calls.

It speaks docs/protocols/ece.md exactly; the paths come from `config/ece_paths.py`, so a site whose ECE
differs overrides them per integration (`api_paths`). Every HTTP outcome leaves as a value or as one
of RetryableError / PermanentError / ConversationGone whose text an operator can act on; no
`requests` exception escapes.

The access token and the entry point configurations live in Redis, shared by every worker: ECE
issues a 24 h token per login, and logging in once per job would be slow and noisy in its audit log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from defusedxml.ElementTree import ParseError, fromstring
from redis import Redis

from connector.backends import Availability
from connector.backends.in_flight import IN_FLIGHT
from connector.config import ece_paths as paths
from connector.config.model import Integration
from connector.errors import ConversationGone, PermanentError, RetryableError
from connector.http_session import outbound_session, retry_after
from connector.store import keys, replies

__all__ = ["Availability", "EceClient", "EntryPointConfiguration", "StartedConversation", "client_for"]

log = logging.getLogger(__name__)

JSON = "application/json"
TOKEN_MARGIN_SECONDS = 60  # renew before ECE does: a token that expires mid-call costs a 401 round trip
TOKEN_MIN_TTL_SECONDS = 30
TOKEN_DEFAULT_LIFETIME = 86400  # profile: expires_in is 86400 (24 h)
CONFIGURATION_TTL_SECONDS = 300
REFERENCE_ATTRIBUTE = "connector_reference"
"""[I] The custom attribute that carries a start's client reference (docs/protocols/ece.md, "Start conversation")."""
_LOOKUP_UNSERVED = (404, 405, 501)  # the lookup path itself is not served: no such call on this ECE
_ENDED = ("ended", "complete", "completed", "closed")  # [I] a listed conversation's state when it is over
_ECE_MESSAGE_LIMIT = 300
_TLS_REASON = re.compile(r"certificate verify failed: (.*?) \(_ssl")  # OpenSSL's reason, e.g. "self-signed certificate"


@dataclass(frozen=True)
class EntryPointConfiguration:
    """What ECE says about an entry point; `last_modified` must accompany every start (409 if stale)."""

    id: str
    last_modified: str
    attachment_policies: Any


@dataclass(frozen=True)
class StartedConversation:
    conversation_id: str
    activity_id: str | None


# -- warnings once per integration (a process builds a client per config change, not per call) -----

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(integration: str, kind: str, message: str, *args: object) -> None:
    with _warned_lock:
        if (integration, kind) in _warned:
            return
        _warned.add((integration, kind))
    log.warning(message, *args, extra={"integration": integration})


# -- the client -----------------------------------------------------------------------------------


class EceClient:
    """Blocking client of one integration's ECE, safe to share between threads (one requests.Session).

    Bearer calls that meet a 401 renew the token and repeat once: ECE drops tokens on restart and a
    cached token can outlive them. Logs carry ids and outcomes, never the secret, the token or
    message bodies.
    """

    def __init__(
        self,
        integration: Integration,
        redis: Redis,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 10.0),
    ) -> None:
        self.integration = integration
        self.redis = redis
        self.session = session or outbound_session()
        self.timeout = timeout
        self.base_url = integration.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self.host = parts.hostname or self.base_url
        self.port = parts.port or (80 if parts.scheme == "http" else 443)
        # Passed on every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE in the environment.
        self.verify: bool | str = integration.ca_bundle or integration.verify_tls
        if self.verify is False:
            _warn_once(
                integration.name,
                "verify_tls",
                "ECE TLS certificates of integration %s are NOT verified (verify_tls: false); "
                "set ca_bundle to ECE's CA instead in production",
                integration.name,
            )
        if parts.scheme == "http":
            _warn_once(
                integration.name,
                "http",
                "ECE base_url %s of integration %s is plain http: the client secret and tokens travel unencrypted",
                self.base_url,
                integration.name,
            )
        unknown = paths.unknown_names(integration.api_paths)
        if unknown:
            _warn_once(
                integration.name,
                "api_paths",
                "api_paths of integration %s names unknown paths %s (known: %s); they are ignored",
                integration.name,
                ", ".join(unknown),
                ", ".join(sorted(paths.NAMES)),
            )
        fingerprint = hashlib.sha256(f"{self.base_url}\n{integration.client_key or ''}".encode()).hexdigest()[:16]
        self._token_key = keys.ece_token(integration.name, fingerprint)

    @property
    def name(self) -> str:
        return self.integration.name

    # -- token ----------------------------------------------------------------------------------

    def token(self, *, fresh: bool = False) -> str:
        """The client app's access token: the one cached in Redis, or (fresh, or none cached) a new
        one, cached until `TOKEN_MARGIN_SECONDS` before ECE lets it expire."""
        if not fresh:
            cached = self.redis.get(self._token_key)
            if cached:
                return cached.decode() if isinstance(cached, bytes) else str(cached)
        key, secret = self.integration.client_key, self.integration.client_secret
        if not key or not secret:
            raise PermanentError(
                f"integration {self.name} has no client_key/client_secret: "
                "copy them from the client application in ECE's administration"
            )
        # docs/protocols/ece.md, "Client-application token": Basic base64(key:secret), form
        # grant_type=client_credentials
        response = self._request(
            "POST",
            "token",
            self._url("token"),
            auth=(key, secret),
            data={"grant_type": "client_credentials"},
            headers={"Accept": JSON},
        )
        if response.status_code == 401:
            raise self._rejected_credentials()
        self._raise_for_status(response, "token")
        body = self._json(response, "token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RetryableError(f"ECE's token answer for integration {self.name} has no access_token")
        lifetime = _as_int(body.get("expires_in")) or TOKEN_DEFAULT_LIFETIME
        self.redis.set(self._token_key, token, ex=max(lifetime - TOKEN_MARGIN_SECONDS, TOKEN_MIN_TTL_SECONDS))
        log.info("ece token issued", extra={"integration": self.name, "expires_in": lifetime})
        return token

    def _renewed_token(self, rejected: str) -> str:
        """A token to replace `rejected`: another worker's newer one if it already renewed, else a fresh
        one (after an ECE restart, workers that meet the 401 later reuse the first renewal)."""
        cached = replies.bytes_or_none(self.redis.get(self._token_key))
        current = cached.decode() if isinstance(cached, bytes) else cached
        if current and current != rejected:
            return current
        self.redis.delete(self._token_key)
        return self.token(fresh=True)

    def _rejected_credentials(self) -> PermanentError:
        return PermanentError(
            f"ECE rejected the client key/secret of integration {self.name}: check them in ECE's client application"
        )

    # -- entry points ---------------------------------------------------------------------------

    def entry_point_configuration(self, entry_point_id: str, *, fresh: bool = False) -> EntryPointConfiguration:
        """The entry point's configuration, cached in Redis for CONFIGURATION_TTL_SECONDS; a start that
        meets 409 asks again with `fresh`."""
        cache_key = keys.ece_entry_point_config(self.name, entry_point_id)
        if not fresh:
            cached = replies.bytes_or_none(self.redis.get(cache_key))
            if cached:
                data = json.loads(cached)
                return EntryPointConfiguration(data["id"], data["lastModified"], data.get("attachmentPolicies"))
        response = self._bearer("GET", "configuration", ep=entry_point_id)
        self._raise_for_status(response, "configuration", ep=entry_point_id)
        config = self._read_configuration(self._json(response, "configuration"), entry_point_id)
        record = {
            "id": config.id,
            "lastModified": config.last_modified,
            "attachmentPolicies": config.attachment_policies,
        }
        self.redis.set(cache_key, json.dumps(record), ex=CONFIGURATION_TTL_SECONDS)
        log.info(
            "ece entry point configuration fetched",
            extra={"integration": self.name, "entry_point_id": entry_point_id, "last_modified": config.last_modified},
        )
        return config

    def _read_configuration(self, body: Mapping[str, Any], entry_point_id: str) -> EntryPointConfiguration:
        # {"entryPointConfiguration":[{"entryPoint":{"id":1001},"lastModified":"…","attachmentPolicies":…}]}
        items = body.get("entryPointConfiguration")
        if not isinstance(items, list):
            raise RetryableError(
                f"ECE's configuration answer for entry point {entry_point_id} has no entryPointConfiguration list"
            )
        entries = [item for item in items if isinstance(item, dict)]
        matching = [e for e in entries if _id_of(e, "entryPoint") == str(entry_point_id)]
        entry = next(iter(matching or entries), None)
        if entry is None:
            raise PermanentError(f"no entry point {entry_point_id} in ECE")
        last_modified = entry.get("lastModified")
        if last_modified is None:
            raise RetryableError(f"ECE's configuration of entry point {entry_point_id} has no lastModified")
        ep_id = _id_of(entry, "entryPoint") or str(entry_point_id)
        return EntryPointConfiguration(ep_id, str(last_modified), entry.get("attachmentPolicies"))

    def chat_allowed(self, entry_point_id: str) -> bool:
        """chatAllowed: whether the entry point is active (no auth)."""
        data = self._probe("chat_allowed", entry_point_id)
        return self._required_bool(data, "allowed", "chat_allowed", entry_point_id)

    def availability(self, entry_point_id: str) -> Availability:
        """The four confirmed family-A checks plus liveSessionStatus, all without auth.

        A connection failure or 5xx of a confirmed check raises RetryableError: the gate must not open
        or close on a guess. Capacity and eligibility answered with a 4xx or an unreadable body are
        None (unknown, gate stays open). liveSessionStatus is an inferred path, so any failure of it
        only leaves depth and wait unknown.

        The five calls go out at once (`_PROBES`): an ECE answering in seconds makes a new chat wait
        one answer, not five. Their answers are read in the order above, so the first failure in
        that order is the one raised, as if they had been made one after another."""
        chat_allowed = _PROBES.submit(self.chat_allowed, entry_point_id)
        agents = _PROBES.submit(self._probe, "agent_availability", entry_point_id)
        capacity = _PROBES.submit(self._probe, "capacity", entry_point_id, soft=True)
        eligibility = _PROBES.submit(self._probe, "eligibility", entry_point_id, soft=True)
        live_status = _PROBES.submit(self._live_session_status, entry_point_id)
        allowed = chat_allowed.result()
        available = self._required_bool(agents.result(), "available", "agent_availability", entry_point_id)
        count = _as_int(_lookup(capacity.result(), "count"))
        response_type = _as_int(_lookup(eligibility.result(), "responseType"))
        live = live_status.result()
        wait = _as_float(_lookup(live, "waitTime"))
        return Availability(
            chat_allowed=allowed,
            agents_available=available,
            capacity=count,
            eligibility=response_type,
            queue_depth=_as_int(_lookup(live, "queueDepth")),
            wait_seconds=round(wait) if wait is not None else None,
        )

    def _probe(self, name: str, entry_point_id: str, *, soft: bool = False) -> Mapping[str, Any]:
        response = self._request(
            "GET", name, self._url(name, ep=entry_point_id), headers={"Accept": JSON}, entry_point_id=entry_point_id
        )
        if soft and 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            log.info(
                "ece %s unanswered",
                name,
                extra={"integration": self.name, "entry_point_id": entry_point_id, "status": response.status_code},
            )
            return {}
        self._raise_for_status(response, name, ep=entry_point_id)
        return _answer(response)

    def _live_session_status(self, entry_point_id: str) -> Mapping[str, Any]:
        try:
            return self._probe("live_session_status", entry_point_id)
        except (RetryableError, PermanentError) as exc:
            log.info(
                "ece liveSessionStatus unavailable: queue depth and wait unknown",
                extra={"integration": self.name, "entry_point_id": entry_point_id, "reason": str(exc)},
            )
            return {}

    def _required_bool(self, data: Mapping[str, Any], field: str, name: str, entry_point_id: str) -> bool:
        value = _as_bool(_lookup(data, field))
        if value is None:
            raise RetryableError(f"ECE's {name} answer for entry point {entry_point_id} has no readable '{field}'")
        return value

    # -- conversations --------------------------------------------------------------------------

    def start_conversation(
        self,
        entry_point_id: str,
        *,
        customer: Mapping[str, str],
        custom_attributes: Mapping[str, str],
        subject: str | None = None,
        locale: str | None = None,
        reference: str | None = None,
    ) -> StartedConversation:
        """Start a conversation on the entry point with its current lastModified. A 409 means ECE's
        configuration changed since it was cached: refetch it and try once more.

        `reference`, the connector's own name for this start, goes as the custom attribute
        `REFERENCE_ATTRIBUTE`, so `find_conversation` can find the conversation if the answer is lost."""
        attributes = dict(custom_attributes)
        if reference is not None:
            attributes[REFERENCE_ATTRIBUTE] = reference
        request: dict[str, Any] = {
            "customer": {"attributes": [{"name": k, "value": v} for k, v in customer.items()]},
            "customAttributes": [{"name": k, "value": v} for k, v in attributes.items()],
        }
        if subject is not None:
            request["subject"] = subject
        if locale is not None:
            request["locale"] = locale
        config = self.entry_point_configuration(entry_point_id)
        response = self._start(config, request)
        if response.status_code == 409:
            log.info(
                "ece start refused as stale (409): refetching the configuration",
                extra={"integration": self.name, "entry_point_id": entry_point_id},
            )
            config = self.entry_point_configuration(entry_point_id, fresh=True)
            response = self._start(config, request)
            if response.status_code == 409:
                raise RetryableError(
                    f"ECE refused to start a conversation on entry point {entry_point_id} twice as stale (409) "
                    "although its configuration was just fetched"
                )
        self._raise_for_status(response, "start", ep=entry_point_id)
        body = self._json(response, "start")
        conversation_id = _id_of(body, "conversation")
        if conversation_id is None:
            raise PermanentError(
                f"ECE answered {response.status_code} to start on entry point {entry_point_id} without "
                f"conversation.id: check api_paths.start of integration {self.name}"
            )
        started = StartedConversation(conversation_id, _id_of(body, "activity"))
        log.info(
            "ece conversation started",
            extra={
                "integration": self.name,
                "entry_point_id": entry_point_id,
                "conversation_id": started.conversation_id,
                "activity_id": started.activity_id,
            },
        )
        return started

    def find_conversation(self, reference: str) -> str | None:
        """The id of the conversation a start carrying `reference` created, or None: ECE knows none,
        or cannot be asked (docs/protocols/ece.md, "Start conversation", [I] path `find_conversation`).

        Asked only when a start was attempted but its answer never recorded (the worker died, or the
        call timed out): starting again would give the customer a second conversation. A lookup ECE
        does not serve (404, 405, 501, or another 4xx refusing the query) is logged at WARNING and
        answers None, so the caller starts as before, at the risk of that duplicate. An outage (timeout,
        5xx, 408, 429) raises RetryableError: the item waits and asks again, rather than guess.
        Only an entry that echoes `reference` is adopted, so an ECE that ignores the query and lists
        every conversation can never hand over someone else's; one whose `state` says it ended is not
        adopted (the message would have nowhere to go)."""
        response = self._bearer("GET", "find_conversation", ref=reference)
        status = response.status_code
        if status in _LOOKUP_UNSERVED or (400 <= status < 500 and status not in (408, 429)):
            self._lookup_unavailable(f"ECE answered {status}", reference)
            return None
        self._raise_for_status(response, "find_conversation")
        try:
            body = response.json()
        except ValueError:
            body = None
        listed = body.get("conversations") if isinstance(body, dict) else None
        if not isinstance(listed, list):
            self._lookup_unavailable(f"ECE's {status} answer has no conversations list", reference)
            return None
        entries = [entry for entry in listed if isinstance(entry, dict)]
        matching = [entry for entry in entries if _reference_of(entry) == reference and _plain_id(entry)]
        open_ = [entry for entry in matching if str(entry.get("state", "")).lower() not in _ENDED]
        if not open_:
            if matching:
                log.info(
                    "ece conversation of an interrupted start has already ended: starting a new one",
                    extra={"integration": self.name, "reference": reference, "conversation_id": _plain_id(matching[0])},
                )
            elif entries:
                self._lookup_unavailable(
                    f"ECE listed {len(entries)} conversation(s), none carrying the reference", reference
                )
            else:
                log.info(
                    "ece has no conversation for an interrupted start: starting it",
                    extra={"integration": self.name, "reference": reference},
                )
            return None
        found = _plain_id(open_[0])
        log.info(
            "ece conversation found for an interrupted start",
            extra={"integration": self.name, "reference": reference, "conversation_id": found, "found": len(open_)},
        )
        return found

    def _lookup_unavailable(self, why: str, reference: str) -> None:
        log.warning(
            "ece cannot look up a start by reference (%s): starting again, a duplicate conversation may "
            "follow; set api_paths.find_conversation of integration %s to ECE's lookup if it has one",
            why,
            self.name,
            extra={"integration": self.name, "reference": reference},
        )

    def _start(self, config: EntryPointConfiguration, request: Mapping[str, Any]) -> requests.Response:
        """The start call with the entry point's id and lastModified put first, as ECE checks them."""
        body = {"entryPoint": {"id": config.id, "lastModified": config.last_modified}, **request}
        return self._bearer("POST", "start", ep=config.id, json=body)

    def send_message(self, conversation_id: str, text: str, *, html: bool = False) -> str:
        """Send the customer's text; returns ECE's message id ("" if ECE's answer names none: the
        message is delivered all the same, and repeating it would duplicate it)."""
        body = {"type": {"value": "text/html" if html else "text/plain"}, "content": text}
        response = self._bearer("POST", "send_message", conversation_id=conversation_id, json=body)
        return self._sent(response, "send_message", conversation_id)

    def send_attachment(self, conversation_id: str, name: str, mime_type: str, data: bytes) -> str:
        """Upload a customer's file (multipart `file`, `name`, `mimeType`); returns ECE's id."""
        response = self._bearer(
            "POST",
            "send_attachment",
            conversation_id=conversation_id,
            files={"file": (name, data, mime_type)},
            data={"name": name, "mimeType": mime_type},
        )
        return self._sent(response, "send_attachment", conversation_id)

    def end_conversation(self, conversation_id: str) -> None:
        """End the conversation (204). ConversationGone if ECE no longer knows it."""
        response = self._bearer("POST", "end", conversation_id=conversation_id)
        self._raise_for_status(response, "end", conversation_id=conversation_id)
        log.info("ece conversation ended", extra={"integration": self.name, "conversation_id": conversation_id})

    def _sent(self, response: requests.Response, name: str, conversation_id: str) -> str:
        self._raise_for_status(response, name, conversation_id=conversation_id)
        try:
            message_id = response.json().get("id")
        except (ValueError, AttributeError):
            message_id = None
        if message_id in (None, ""):
            log.warning(
                "ece accepted %s without an id",
                name,
                extra={"integration": self.name, "conversation_id": conversation_id, "status": response.status_code},
            )
            return ""
        log.info(
            "ece %s sent",
            name,
            extra={"integration": self.name, "conversation_id": conversation_id, "ece_message_id": str(message_id)},
        )
        return str(message_id)

    # -- wire -----------------------------------------------------------------------------------

    def _url(
        self, name: str, *, ep: str | None = None, conversation_id: str | None = None, ref: str | None = None
    ) -> str:
        path = paths.path_for(name, self.integration.api_paths, ep=ep, id=conversation_id, ref=ref)
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    def _bearer(
        self,
        method: str,
        name: str,
        *,
        ep: str | None = None,
        conversation_id: str | None = None,
        ref: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """A call with the Bearer token; a 401 renews the token and repeats the call once."""
        url = self._url(name, ep=ep, conversation_id=conversation_id, ref=ref)
        token = self.token()
        response = self._request(method, name, url, headers=_bearer_headers(token), **kwargs)
        if response.status_code != 401:
            return response
        log.info("ece token rejected (401): renewing it once", extra={"integration": self.name, "call": name})
        token = self._renewed_token(token)
        response = self._request(method, name, url, headers=_bearer_headers(token), **kwargs)
        if response.status_code == 401:
            raise self._rejected_credentials()
        return response

    def _request(
        self, method: str, name: str, url: str, *, entry_point_id: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """One HTTP exchange; transport failures become RetryableError in operator words."""
        where = f"{self.host}:{self.port}"
        try:
            with IN_FLIGHT.call(self.integration):  # the integration's max_in_flight, per process
                response = self.session.request(
                    method, url, timeout=self.timeout, verify=self.verify, allow_redirects=False, **kwargs
                )
        except requests.exceptions.SSLError as exc:  # before ConnectionError: SSLError is one
            reason = _TLS_REASON.search(str(exc))
            raise RetryableError(
                f"the certificate of host {self.host} is not trusted: set ca_bundle or fix the certificate"
                + (f" ({reason.group(1)})" if reason else ""),
                outage=True,
            ) from exc
        except requests.exceptions.ConnectTimeout as exc:  # before ConnectionError: it is one too
            raise RetryableError(
                f"ECE at {where} did not accept a connection within {self.timeout[0]:g} s "
                f"(integration {self.name}): check base_url and firewall",
                outage=True,
            ) from exc
        except requests.Timeout as exc:  # a read timeout on a POST may have taken effect in ECE
            raise RetryableError(
                f"ECE at {where} did not answer within {self.timeout[1]:g} s ({name} call, integration {self.name})",
                outage=True,
            ) from exc
        except requests.ConnectionError as exc:
            raise RetryableError(
                f"cannot reach ECE at {where} (integration {self.name}): check base_url, DNS and firewall",
                outage=True,
            ) from exc
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ) as exc:
            raise PermanentError(f"base_url {self.base_url} of integration {self.name} is not a valid URL") from exc
        except requests.RequestException as exc:
            raise RetryableError(f"ECE at {where} broke off {name}: {exc}", outage=True) from exc
        log.debug(
            "ece %s %s -> %s",
            method,
            name,
            response.status_code,
            extra={"integration": self.name, "entry_point_id": entry_point_id},
        )
        return response

    def _raise_for_status(
        self, response: requests.Response, name: str, *, ep: str | None = None, conversation_id: str | None = None
    ) -> None:
        """Map a non-2xx answer to the typed error whose text says what to do."""
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = _ece_message(response)
        if status == 429 or status == 408 or status >= 500:
            raise RetryableError(
                f"ECE answered {status} to {name} (integration {self.name}){': ' + detail if detail else ''}",
                wait=retry_after(response),
                outage=status >= 500,
            )
        if status == 404:
            if conversation_id is not None:
                raise ConversationGone(f"conversation {conversation_id} is unknown to ECE or already ended")
            if name == "configuration":
                raise PermanentError(f"no entry point {ep} in ECE")
            raise PermanentError(
                f"ECE answered 404 to {name}{': ' + detail if detail else ''}: "
                f"check base_url and api_paths.{name} of integration {self.name}"
            )
        if status == 403:
            if conversation_id is not None:
                raise PermanentError(f"conversation {conversation_id} was not started by this client app")
            if ep is not None:
                raise PermanentError(
                    f"entry point {ep} is not bound to the client app in ECE: add it to the messaging adapter"
                )
        if status == 400:
            raise PermanentError(f"ECE refused {name} (400): {detail or 'no reason given'}")
        if status == 409:
            raise RetryableError(f"ECE answered 409 (conflict) to {name}{': ' + detail if detail else ''}")
        if 300 <= status < 400:
            raise PermanentError(
                f"ECE redirected {name} to {response.headers.get('Location', '?')}: "
                f"set base_url of integration {self.name} to the address ECE answers on"
            )
        raise PermanentError(f"ECE answered {status} to {name}{': ' + detail if detail else ''}")

    def _json(self, response: requests.Response, name: str) -> Mapping[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RetryableError(f"ECE answered {response.status_code} to {name} with a body that is not a JSON object")
        return body


def _bearer_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": JSON}


# -- answers ----------------------------------------------------------------------------------------


def _answer(response: requests.Response) -> Mapping[str, Any]:
    """A family-A answer as a flat mapping: JSON as sent with `Accept: application/json`, or the XML
    ECE sends by default (`<chatAllowed allowed="true"/>`, `<availableSlots><ns2:count>3…`)."""
    text = response.text.strip()
    if text.startswith("<"):
        try:
            root = fromstring(text)
        except ParseError:
            return {}
        flat: dict[str, Any] = {}
        for element in root.iter():
            flat.update(element.attrib)
            if len(element) == 0 and element.text and element.text.strip():
                flat[element.tag.rsplit("}", 1)[-1]] = element.text.strip()
        return flat
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _plain_id(entry: Mapping[str, Any]) -> str | None:
    found = entry.get("id")
    return None if found in (None, "") or isinstance(found, dict | list) else str(found)


def _reference_of(entry: Mapping[str, Any]) -> str | None:
    """The client reference a listed conversation echoes: `reference`, or its custom attribute."""
    if isinstance(entry.get("reference"), str):
        return str(entry["reference"])
    attributes = entry.get("customAttributes")
    for attribute in attributes if isinstance(attributes, list) else ():
        if isinstance(attribute, dict) and attribute.get("name") == REFERENCE_ATTRIBUTE:
            value = attribute.get("value")
            return value if isinstance(value, str) else None
    return None


def _id_of(body: Mapping[str, Any], field: str) -> str | None:
    """`body[field]["id"]` as a string (ECE ids may be numbers), or None."""
    value = body.get(field)
    found = value.get("id") if isinstance(value, dict) else None
    return None if found in (None, "") else str(found)


def _lookup(data: Mapping[str, Any], field: str) -> Any:
    """`field` at the top level or one level down (`{"availableSlots": {"count": 3}}`)."""
    if field in data:
        return data[field]
    for value in data.values():
        if isinstance(value, dict) and field in value:
            return value[field]
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _as_int(value: Any) -> int | None:
    number = _as_float(value)
    return None if number is None else int(number)


def _ece_message(response: requests.Response) -> str:
    """ECE's own words about a refusal (`developerMessage` of its error objects), else the body text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            body = body["error"]
        for field in ("developerMessage", "userMessage", "message", "error_description", "error", "detail"):
            if isinstance(body.get(field), str) and body[field]:
                code = body.get("code")
                return f"{body[field]} ({code})" if isinstance(code, str) and code else body[field]
    text = " ".join(response.text.split())
    return text[:_ECE_MESSAGE_LIMIT]


# -- one client per (integration, process) ----------------------------------------------------------

_PROBES = ThreadPoolExecutor(32, thread_name_prefix="ece-probe")
"""Runs an availability check's five calls at once (threads start when first needed, so a process
forked before then has its own)."""
_clients: dict[tuple[str, tuple[float, float] | None], tuple[int, Integration, Redis, EceClient]] = {}
_clients_lock = threading.Lock()


def client_for(integration: Integration, redis: Redis, timeout: tuple[float, float] | None = None) -> EceClient:
    """The process's client of `integration` (one per `timeout`: an operator's refresh waits less
    than a worker), rebuilt when the integration changes (a config reload hands over a new, unequal
    object), for another Redis, or after a fork (a Session's pooled connections must not be shared
    across processes)."""
    pid = os.getpid()
    key = (integration.name, timeout)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is not None:
            cached_pid, cached_integration, cached_redis, client = cached
            if cached_pid == pid and cached_redis is redis and cached_integration == integration:
                return client
        client = EceClient(integration, redis) if timeout is None else EceClient(integration, redis, timeout=timeout)
        _clients[key] = (pid, integration, redis, client)
        return client
