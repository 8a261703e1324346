"""Shared set-up of the agent API tests: a Hybrid Chat integration with an in-app asset (the customer's
app mocked with `responses`), two local agents, and logins through the API."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import responses
from werkzeug.security import generate_password_hash

from connector.channels.base import thread_id_for
from connector.config.model import HybridAgent
from connector.relay.drain import drain_thread
from connector.sandbox.signing import inapp_headers
from connector.store import threads

ASSET = "app-agent-api"
SECRET = "agent-api-inapp-secret-0123456789"
DELIVERY = "https://app.agent-api.example.com/deliver"
ZOE, ZOE_PASSWORD = "zoe", "zoe-password-1"
YAN, YAN_PASSWORD = "yan", "yan-password-2"
YAN_HASH = generate_password_hash(YAN_PASSWORD)  # once: scrypt costs ~0.1 s a hash

LOCAL_AGENTS = (
    HybridAgent(login=ZOE, name="Zoe", password=ZOE_PASSWORD, skills=("english",), max_chats=2),
    HybridAgent(login=YAN, name="Yan", password_hash=YAN_HASH, skills=("english",), max_chats=2),
)


def with_local_agents(runtime) -> None:
    runtime._config = replace(runtime.provisioned, hybrid_agents=LOCAL_AGENTS)


def configure_desk(runtime) -> None:
    """The Desk integration (Support, Billing), the in-app asset and its rule, the two local agents."""
    with_local_agents(runtime)
    store = runtime.overrides
    store.save(
        "integrations",
        {
            "name": "Desk",
            "type": "hybrid",
            "entry_points": [
                {"name": "Support", "skills": ["english"], "offer_timeout_seconds": 5},
                {"name": "Billing", "priority": 2},
            ],
        },
        runtime.provisioned,
        create=True,
    )
    store.save(
        "assets",
        {"name": ASSET, "channel": "inapp", "app_id": "agent-api", "secret": SECRET, "delivery_url": DELIVERY},
        runtime.provisioned,
        create=True,
    )
    store.save(
        "rules",
        {
            "name": "agent-api",
            "channel": "inapp",
            "event": "incoming_message",
            "asset": ASSET,
            "action": {"forward_to": "Desk", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()


def login(client, name: str = ZOE, password: str = ZOE_PASSWORD) -> dict:
    answer = client.post("/agent/login", json={"login": name, "password": password})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def customer_says(runtime, client, customer: str, text: str) -> str:
    """A signed in-app webhook, then the thread's drain in this process: queued, routed."""
    customer_posts(client, customer, text)
    thread_id = thread_id_for("inapp", ASSET, customer)
    drain_thread(thread_id, runtime)
    return thread_id


def customer_posts(client, customer: str, text: str, kind: str = "text") -> str:
    """A signed in-app webhook (`kind` "close": the customer leaves), acknowledged (in the inbox, not
    handled yet); its message id."""
    message_id = f"m-{time.time_ns()}"
    body = json.dumps(
        {"message_id": message_id, "customer": {"id": customer}, "type": kind, "text": text, "sent_at": time.time()}
    ).encode()
    headers = {"Content-Type": "application/json", **inapp_headers(SECRET, body)}
    assert client.post(f"/webhooks/inapp/{ASSET}", data=body, headers=headers).status_code == 200
    return message_id


def chat_of(runtime, thread_id: str) -> str:
    return threads.load(runtime.redis, thread_id).remote_id


def delivered(mock: responses.RequestsMock) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.url == DELIVERY]
