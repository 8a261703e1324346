"""Provider webhook bodies the benchmarks send: the sandbox's WhatsApp number, as Meta posts them."""

from __future__ import annotations

import json
import time

PHONE_NUMBER_ID = "100000000000002"
"""The sandbox WhatsApp asset's phone number id (entrypoints/sandbox/sandbox.yaml)."""


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
