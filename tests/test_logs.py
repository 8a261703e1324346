"""Structured logs: one JSON object a line, extras as fields, and a webhook's line at INFO carries
the conversation id and never the customer's text."""

from __future__ import annotations

import json
import logging
import sys

from connector.logs import JsonFormatter
from tests.helpers import WHATSAPP_ASSET, whatsapp_headers, whatsapp_payload


def record(created: float, message: str = "hello %s", args: tuple = ("there",), **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("connector.test", logging.INFO, __file__, 1, message, args, None)
    made.created, made.msecs = created, (created - int(created)) * 1000
    made.__dict__.update(extra)
    return made


def test_a_line_is_one_json_object_with_the_extras_as_fields():
    formatter = JsonFormatter()
    line = formatter.format(record(1790000000.042, conversation="abc", attempts=2, ok=True, wait=None, at=b"x"))
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2026-09-21T14:13:20.042Z",
        "level": "info",
        "logger": "connector.test",
        "msg": "hello there",
        "conversation": "abc",
        "attempts": 2,
        "ok": True,
        "wait": None,
        "at": "b'x'",  # anything but a plain value goes as its text
    }


def test_each_line_has_its_own_second_and_millisecond():
    formatter = JsonFormatter()
    stamps = [json.loads(formatter.format(record(t)))["ts"] for t in (1790000000.5, 1790000000.9995, 1790000001.0015)]
    assert stamps == ["2026-09-21T14:13:20.500Z", "2026-09-21T14:13:20.999Z", "2026-09-21T14:13:21.001Z"]


def test_an_exception_goes_in_the_line_with_its_traceback():
    formatter = JsonFormatter()
    try:
        raise ValueError("broken")
    except ValueError:
        failed = record(1790000000.0, exc_info=None)
        failed.exc_info = sys.exc_info()
    entry = json.loads(formatter.format(failed))
    assert "ValueError: broken" in entry["exc"]
    assert "Traceback" in entry["exc"]


def test_an_accepted_webhook_logs_its_conversation_but_not_the_customers_text(client, caplog):
    body = whatsapp_payload([("15550001111", "wamid.logged", "my card number is 4111")])
    with caplog.at_level(logging.INFO, logger="connector.webhooks"):
        answer = client.post(f"/webhooks/whatsapp/{WHATSAPP_ASSET}", data=body, headers=whatsapp_headers(body))
    assert answer.status_code == 200
    [accepted] = [r for r in caplog.records if r.getMessage() == "inbound event accepted"]
    line = json.loads(JsonFormatter().format(accepted))
    assert line["conversation"] and line["channel"] == "whatsapp" and line["provider_id"] == "wamid.logged"
    assert "4111" not in json.dumps(line)
