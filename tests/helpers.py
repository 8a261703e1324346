"""Test helpers shared by several test modules: signed WhatsApp payloads and waiting with a deadline."""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector.sandbox.signing import meta_signature

WHATSAPP_ASSET = "test-whatsapp"
WHATSAPP_SECRET = b"whatsapp-app-secret"
WHATSAPP_PHONE_NUMBER_ID = "106540352242922"


def whatsapp_payload(messages: list[tuple[str, str, str]], timestamp: int = 1_790_000_000) -> bytes:
    """A WhatsApp Cloud webhook body with one message per (wa_id, wamid, text)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550002222", "phone_number_id": WHATSAPP_PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": f"Customer {wa_id}"}, "wa_id": wa_id} for wa_id in {m[0] for m in messages}],
        "messages": [
            {"from": wa_id, "id": wamid, "timestamp": str(timestamp), "type": "text", "text": {"body": text}}
            for wa_id, wamid, text in messages
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def whatsapp_headers(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(WHATSAPP_SECRET, body)}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def self_signed(folder: Path, domain: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for `domain` and 127.0.0.1, and its key: (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(domain), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{domain}.pem", folder / f"{domain}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


# The attributes every LogRecord has: its timing and process numbers would match digits by chance
# (a `created` of 1795387775.4111 contains "4111"), so only what the code put on the record counts.
_RECORD_BUILTINS = frozenset(vars(logging.makeLogRecord({}))) - {"msg", "args"}


def logged_text(records: list[logging.LogRecord]) -> str:
    """Everything the code logged: the formatted messages, their args and the structured extras."""
    parts = []
    for record in records:
        parts.append(record.getMessage())
        parts.extend(f"{key}={value!r}" for key, value in vars(record).items() if key not in _RECORD_BUILTINS)
    return "\n".join(parts)


def route_whatsapp_to_an_unreachable_ece(runtime: Any) -> None:
    """A UI-made ECE integration "DownECE" at an address nobody listens on, and a rule sending the
    WhatsApp test asset there ahead of the others: a real connection refused, no mock."""
    route_whatsapp_to_ece(runtime, "http://127.0.0.1:9/ece", client=("k", "s"), name="DownECE")


def route_whatsapp_to_ece(runtime: Any, base_url: str, client: tuple[str, str], name: str) -> None:
    """A UI-made ECE integration `name` at `base_url` (entry point Support = 1001), and a rule
    sending the WhatsApp test asset there ahead of the others."""
    store = runtime.overrides
    integration = {
        "name": name,
        "type": "ece",
        "base_url": base_url,
        "client_key": client[0],
        "client_secret": client[1],
        "entry_points": [{"name": "Support", "id": "1001"}],
    }
    store.save("integrations", integration, runtime.provisioned, create=True)
    rule_name = f"whatsapp-{name.lower()}"
    rule = {
        "name": rule_name,
        "channel": "whatsapp",
        "event": "incoming_message",
        "asset": WHATSAPP_ASSET,
        "action": {"forward_to": name, "entry_point": "Support"},
    }
    store.save("rules", rule, runtime.provisioned, create=True)
    runtime.config_changed()
    order = [rule_name, *(r.name for r in runtime.config.rules if r.name != rule_name)]
    store.set_rule_order(order, runtime.config)
    runtime.config_changed()
