"""Who a Finesse agent is, as Finesse itself says: the agent API never trusts a login or an
authorization as sent.

- `verify_agent_login`: the agent's Finesse login and password (`POST /agent/login`), checked with a
  GET of the agent's own User with those credentials (as the agent's login always did,
  unchanged).
- `verify_authorization`: what Finesse's gadget API hands a gadget (`POST /agent/gadget/login`):
  `Basic <base64 id:password>` or, under SSO, `Bearer <token>`, sent as it is to
  `GET /finesse/api/User/{agent_id}`.

Both try the publisher, then the subscriber: a login must work while one node is down.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, replace
from urllib.parse import quote

import requests

from connector.blending.finesse.client import (
    API,
    XML,
    FinesseClient,
    FinesseError,
    FinesseUnavailable,
    FinesseUser,
    error_for,
)
from connector.blending.finesse.objects import MalformedXml, parse_document, read_api_errors, read_user
from connector.config.model import FinesseConfig
from connector.http_session import outbound_session

log = logging.getLogger(__name__)

TIMEOUT = (3.05, 10.0)
MAX_AUTHORIZATION = 8192
"""Longest Authorization accepted (an SSO access token is a few kilobytes at most)."""


class Mismatch(Exception):
    """Finesse accepted the authorization, but it is not the named agent's own (another user's
    password, an administrator's or a supervisor's credentials): refused like a wrong password."""


@dataclass(frozen=True)
class GadgetIdentity:
    """A verified gadget login: the agent as Finesse answered, and their Basic credentials (the
    listener needs them), None under SSO."""

    user: FinesseUser
    credentials: tuple[str, str] | None


def _nodes(config: FinesseConfig) -> list[str]:
    return [n.rstrip("/") for n in (config.publisher, config.subscriber) if n]


def verify_agent_login(config: FinesseConfig, agent_id: str, login: str, password: str) -> FinesseUser:
    """The agent's User, unless Finesse refuses the login: raises AuthorizationError / NotFound /
    FinesseUnavailable."""
    last: FinesseError | None = None
    for node in _nodes(config):
        client = FinesseClient(replace(config, publisher=node), credentials=lambda _agent: (login, password))
        try:
            return client.get_user(agent_id)
        except FinesseUnavailable as exc:
            last = exc
    raise last or FinesseUnavailable("no Finesse node configured", error_type="Unavailable")


def basic_credentials(authorization: str) -> tuple[str, str] | None:
    """(user, password) of a `Basic` authorization; None for any other or a malformed one."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon and user and password else None


def verify_authorization(
    config: FinesseConfig, agent_id: str, authorization: str, *, session: requests.Session | None = None
) -> GadgetIdentity:
    """The agent, if Finesse answers `GET /User/{agent_id}` with this very authorization and it is the
    agent's own. Raises AuthorizationError / NotFound (Finesse refused), Mismatch, ValueError (not a
    Basic or Bearer authorization), FinesseUnavailable."""
    authorization = authorization.strip()
    scheme = authorization.partition(" ")[0].lower()
    credentials = basic_credentials(authorization) if scheme == "basic" else None
    if (scheme == "basic" and credentials is None) or scheme not in ("basic", "bearer"):
        raise ValueError('authorization is "Basic <base64 id:password>" or "Bearer <token>"')
    if scheme == "bearer" and not authorization.partition(" ")[2].strip():
        raise ValueError("the Bearer authorization has no token")
    if len(authorization) > MAX_AUTHORIZATION or any(c in authorization for c in "\r\n"):
        raise ValueError("the authorization is not one Finesse hands out")
    user = _get_user(config, agent_id, authorization, session or outbound_session())
    if user.id != agent_id:
        raise Mismatch(f"Finesse answered for {user.id!r}, not {agent_id!r}")
    if credentials is not None:
        # Finesse takes `id:password` and `loginName:password`; anyone else's (an administrator's, a
        # supervisor's of the agent's team) reads the agent's User too, but is not the agent.
        name = credentials[0]
        if name != user.id and name.casefold() != (user.login_name or "").casefold():
            raise Mismatch(f"the authorization is {name!r}'s, not agent {agent_id}'s")
    return GadgetIdentity(user, credentials)


def _get_user(config: FinesseConfig, agent_id: str, authorization: str, session: requests.Session) -> FinesseUser:
    verify: bool | str = config.ca_bundle or config.verify_tls
    last: FinesseError | None = None
    for node in _nodes(config):
        url = f"{node}{API}/User/{quote(agent_id, safe='')}"
        try:
            response = session.get(
                url,
                headers={"Accept": XML, "Authorization": authorization},
                timeout=TIMEOUT,
                verify=verify,
                allow_redirects=False,
            )
        except requests.Timeout:
            last = FinesseUnavailable(f"GET {url} timed out", error_type="Timeout")
            continue
        except requests.ConnectionError as exc:
            last = FinesseUnavailable(f"cannot connect to {node}: {exc}", error_type="Connection")
            continue
        if 200 <= response.status_code < 300:
            try:
                return read_user(parse_document(response.content))
            except MalformedXml as exc:
                raise FinesseError(f"GET {url} answered a body that is not a User: {exc}") from exc
        error = _error(response)
        if not isinstance(error, FinesseUnavailable):
            raise error
        last = error
    raise last or FinesseUnavailable("no Finesse node configured", error_type="Unavailable")


def _error(response: requests.Response) -> FinesseError:
    api_error = None
    if response.content.strip():
        try:
            errors = read_api_errors(parse_document(response.content))
            api_error = errors[0] if errors else None
        except MalformedXml:
            api_error = None
    return error_for(response.status_code, api_error, response.reason or "")
