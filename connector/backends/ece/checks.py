""" "Test and save" of an ECE integration: what an operator learns before relying on it.

It logs in (a fresh token, so the key and secret are really tried), then for each entry point
fetches the configuration (the client app is bound to it) and asks chatAllowed (it is active).
Every failure comes back as a Finding in words an operator can act on; the words are the client's
own errors, so the UI and the dead-letter list say the same thing about the same fault.
"""

from __future__ import annotations

import requests
from redis import Redis

from connector.backends import Finding
from connector.backends.ece.client import EceClient
from connector.config.model import Integration
from connector.errors import PermanentError, RetryableError

__all__ = ["test_integration"]


def test_integration(integration: Integration, redis: Redis, session: requests.Session | None = None) -> list[Finding]:
    """Run the checks in order and return their findings; never raises for an ECE or network fault.

    A failed token stops the run: without a token every entry point would fail the same way."""
    client = EceClient(integration, redis, session=session)
    findings: list[Finding] = []
    try:
        client.token(fresh=True)
    except (RetryableError, PermanentError) as exc:
        return [Finding("token", False, str(exc))]
    findings.append(Finding("token", True, f"ECE accepted the client key and secret of integration {integration.name}"))
    for entry_point in integration.entry_points:
        label = f"entry point {entry_point.name} ({entry_point.id})"
        try:
            config = client.entry_point_configuration(entry_point.id, fresh=True)
        except (RetryableError, PermanentError) as exc:
            findings.append(Finding(f"{label}: configuration", False, str(exc)))
            continue
        findings.append(
            Finding(
                f"{label}: configuration",
                True,
                f"entry point {entry_point.id} is bound to the client app (last modified {config.last_modified})",
            )
        )
        findings.append(_active(client, entry_point.id, label))
    return findings


test_integration.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def _active(client: EceClient, entry_point_id: str, label: str) -> Finding:
    check = f"{label}: active"
    try:
        allowed = client.chat_allowed(entry_point_id)
    except (RetryableError, PermanentError) as exc:
        return Finding(check, False, str(exc))
    if allowed:
        return Finding(check, True, f"entry point {entry_point_id} is active and accepts chats")
    return Finding(
        check,
        False,
        f"entry point {entry_point_id} is not active in ECE (chatAllowed is false): "
        "activate it in ECE's administration",
    )
