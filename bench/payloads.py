"""What the benchmarks post to the connector: WhatsApp webhooks to the sandbox's number, as Meta
posts them, and ECE callbacks to the sandbox's ECE integration, as ECE posts them
(entrypoints/sandbox/sandbox.yaml holds the names and secrets used here)."""

from __future__ import annotations

import json
import time

from bench.loadgen import build_request
from connector.sandbox.signing import meta_signature

PHONE_NUMBER_ID = "100000000000002"
"""The sandbox WhatsApp asset's phone number id."""
ASSET = "sandbox-whatsapp"
META_SECRET = b"sandbox-meta-secret"
INTEGRATION = "SandboxECE"
CALLBACK_TOKEN = "sandbox-callback-token"
"""The sandbox ECE integration's `callback_auth` bearer token."""


def whatsapp_text(wa_id: str, name: str, message_id: str, text: str) -> bytes:
    """One customer's text message, stamped now (inside the 24 h window)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550002222", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": message_id,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            }
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def signed_whatsapp_request(host: str, port: int, body: bytes) -> bytes:
    """The raw HTTP request of a WhatsApp webhook, signed as Meta signs it (X-Hub-Signature-256)."""
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": meta_signature(META_SECRET, body)}
    return build_request(host, port, f"/webhooks/whatsapp/{ASSET}", body, headers)


def ece_agent_text(event_id: str, conversation_id: str, text: str, at: float) -> dict[str, object]:
    """One agent text event of ECE's callback, stamped `at` (unix seconds)."""
    return {
        "id": event_id,
        "conversation": {"id": conversation_id},
        "type": {"value": "text/plain"},
        "content": text,
        "sender": {"type": "user", "user": {"id": "1001", "name": "Alice"}},
        "timeStamp": int(at * 1000),
    }


def ece_callback_request(host: str, port: int, events: list[dict[str, object]]) -> bytes:
    """The raw HTTP request of one ECE callback carrying `events`, with the integration's bearer token."""
    body = json.dumps({"message": events}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {CALLBACK_TOKEN}"}
    return build_request(host, port, f"/ece/{INTEGRATION}/callback", body, headers)
