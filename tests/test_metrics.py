"""`/metrics` with prometheus-client: gauges from Redis, and the counters and latency histograms every
process tallies in Redis, each written in the same atomic step as the work it counts.

Real Redis, the real intake and drain, the ECE simulator on loopback; the in-app channel's delivery
URL is mocked with `responses` (the customer's app backend)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import responses
from prometheus_client.parser import text_string_to_metric_families

from connector.channels.base import thread_id_for
from connector.operations import backpressure
from connector.relay.drain import drain_thread
from connector.sandbox.signing import inapp_headers
from connector.store import keys
from tests.conftest import ECE_CLIENT

ASSET = "app-metrics"
SECRET = "metrics-inapp-secret-0123456789"
DELIVERY = "https://app.metrics.example.com/deliver"
CUSTOMER = "user-7"
THREAD = thread_id_for("inapp", ASSET, CUSTOMER)


@pytest.fixture
def wired(runtime, ece_simulator) -> Iterator[responses.RequestsMock]:
    """A UI-made ECE integration on the simulator, an in-app asset and a rule between them."""
    _simulator, ece_url = ece_simulator
    store = runtime.overrides
    store.save(
        "integrations",
        {
            "name": "MetricsECE",
            "type": "ece",
            "base_url": ece_url,
            "client_key": ECE_CLIENT[0],
            "client_secret": ECE_CLIENT[1],
            "callback_auth": {"type": "none"},
            "entry_points": [{"name": "Support", "id": "1001"}],
        },
        runtime.provisioned,
        create=True,
    )
    store.save(
        "assets",
        {"name": ASSET, "channel": "inapp", "app_id": "metrics", "secret": SECRET, "delivery_url": DELIVERY},
        runtime.provisioned,
        create=True,
    )
    store.save(
        "rules",
        {
            "name": "metrics",
            "channel": "inapp",
            "event": "incoming_message",
            "asset": ASSET,
            "action": {"forward_to": "MetricsECE", "entry_point": "Support"},
        },
        runtime.provisioned,
        create=True,
    )
    runtime.config_changed()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(ece_url.rsplit("/ece", 1)[0])
        mock.post(DELIVERY, json={"ok": True})
        yield mock


def customer_says(client, message_id: str, text: str, customer: str = CUSTOMER) -> None:
    body = json.dumps(
        {"message_id": message_id, "customer": {"id": customer}, "type": "text", "text": text, "sent_at": time.time()}
    ).encode()
    headers = {"Content-Type": "application/json", **inapp_headers(SECRET, body)}
    assert client.post(f"/webhooks/inapp/{ASSET}", data=body, headers=headers).status_code == 200


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name → labels → value, parsed by prometheus-client's own parser."""
    text = client.get("/metrics").get_data(as_text=True)
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_messages_are_counted_once_each_way_with_their_latencies(client, redis, runtime, wired) -> None:
    customer_says(client, "m-1", "Hello")
    customer_says(client, "m-1", "Hello")  # the provider's retry: a duplicate, not counted
    customer_says(client, "m-2", "Anyone?")
    drain_thread(THREAD, runtime)

    got = scrape(client)
    assert got["connector_messages_in_total"][(("channel", "inapp"), ("kind", "message"))] == 2
    assert got["connector_messages_to_contact_center_total"][(("integration", "MetricsECE"),)] == 2
    latency = got["connector_webhook_to_contact_center_seconds_count"][(("integration", "MetricsECE"),)]
    assert latency == 2
    assert (
        got["connector_webhook_to_contact_center_seconds_bucket"][(("integration", "MetricsECE"), ("le", "+Inf"))] == 2
    )
    # the welcome went out to the customer's app: a system message counts as sent, with no latency
    # from the contact center (it is the connector's own)
    assert got["connector_messages_out_total"][(("channel", "inapp"), ("integration", "MetricsECE"))] == 1
    assert "connector_contact_center_to_provider_seconds_count" not in got

    remote = runtime.redis.hget(keys.thread(THREAD), "remote_id").decode()
    event = {"id": "901", "conversation": {"id": remote}, "type": {"value": "text/plain"}, "content": "Hi, Ana here"}
    answer = client.post("/ece/MetricsECE/callback", json={"message": [event]})
    assert answer.status_code == 200 and answer.json["accepted"] == 1
    drain_thread(THREAD, runtime)
    got = scrape(client)
    assert got["connector_messages_out_total"][(("channel", "inapp"), ("integration", "MetricsECE"))] == 2
    assert got["connector_contact_center_to_provider_seconds_count"][(("channel", "inapp"),)] == 1


def test_a_repeat_after_a_crash_counts_what_was_done_once(client, redis, runtime, wired) -> None:
    """The count is written with the commit: a worker killed after the send but before the commit
    counted nothing, and the repeat (which skips the done send) counts it once."""
    customer_says(client, "m-1", "Hello")
    drain_thread(THREAD, runtime)
    remote = runtime.redis.hget(keys.thread(THREAD), "remote_id").decode()
    event = {"id": "902", "conversation": {"id": remote}, "type": {"value": "text/plain"}, "content": "Hi"}
    client.post("/ece/MetricsECE/callback", json={"message": [event]})
    # The send is done and recorded as an effect, as if the worker then died before its commit.
    redis.hset(keys.effects("out", THREAD), "ece:902:0", "sent-before-the-crash")
    before = scrape(client)["connector_messages_out_total"][(("channel", "inapp"), ("integration", "MetricsECE"))]
    drain_thread(THREAD, runtime)
    after = scrape(client)["connector_messages_out_total"][(("channel", "inapp"), ("integration", "MetricsECE"))]
    assert after - before == 1
    assert len([c for c in wired.calls if c.request.url == DELIVERY]) == 1, "the welcome only: the text was sent before"


def test_a_failed_attempt_counts_a_retry_and_its_kind(client, runtime, wired) -> None:
    """Nothing listens where the integration now points: the start fails as an outage and waits."""
    customer_says(client, "m-1", "Hello")
    runtime.overrides.save(
        "integrations",
        {
            "name": "MetricsECE",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",
            "client_key": ECE_CLIENT[0],
            "client_secret": ECE_CLIENT[1],
            "callback_auth": {"type": "none"},
            "entry_points": [{"name": "Support", "id": "1001"}],
        },
        runtime.provisioned,
        create=False,
    )
    runtime.config_changed()
    drain_thread(THREAD, runtime)
    got = scrape(client)
    assert got["connector_retries_total"][(("box", "in"),)] == 1
    assert got["connector_errors_total"][(("box", "in"), ("kind", "outage"))] == 1
    assert "connector_messages_to_contact_center_total" not in got, "nothing reached the contact center"


def test_the_exposition_declares_each_family_once_and_parses(client, wired) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    types = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"connector_messages_in", "connector_webhook_to_contact_center_seconds", "connector_inbox_items"} <= names


def test_backpressure_shows_what_waits_per_integration_and_for_how_long(client, redis, runtime, wired) -> None:
    customer_says(client, "m-1", "Hello")
    drain_thread(THREAD, runtime)  # routed: the thread is now MetricsECE's
    customer_says(client, "m-2", "Anyone?")
    customer_says(client, "m-3", "Hello??")
    customer_says(client, "n-1", "Hi", customer="user-8")  # a new conversation, not routed yet
    head = json.loads(redis.lindex(keys.inbox(THREAD), 0))

    found = backpressure.measure(redis, ["MetricsECE", "Idle"], now=head["received_at"] + 30)
    rows = {row.integration: row for row in found.rows}
    assert list(rows) == ["MetricsECE", "Idle", backpressure.NOT_ROUTED], "configured ones first, always"
    assert (rows["MetricsECE"].queued, rows["MetricsECE"].conversations) == (2, 1)
    assert 29.9 <= rows["MetricsECE"].oldest_seconds <= 30.1, "the head of the inbox is its oldest item"
    assert (rows["Idle"].queued, rows["Idle"].oldest_seconds) == (0, 0.0)
    assert (rows[""].queued, rows[""].conversations) == (1, 1)
    assert found.warning(60) is None
    assert "waited 30 s (MetricsECE; warning above 20 s)" in (found.warning(20) or "")

    got = scrape(client)
    assert got["connector_waiting_events"][(("integration", "MetricsECE"),)] == 2
    assert got["connector_waiting_conversations"][(("integration", ""),)] == 1
    assert got["connector_oldest_waiting_seconds"][(("integration", "MetricsECE"),)] >= 0
    assert got["connector_calls_in_flight"][(("integration", "MetricsECE"),)] == 0

    drain_thread(THREAD, runtime)
    redis.delete(keys.backpressure())  # the last reading is kept CACHE_SECONDS; read afresh
    assert scrape(client)["connector_waiting_events"][(("integration", "MetricsECE"),)] == 0


def test_readyz_warns_about_an_old_backlog_without_turning_unready(client, redis, runtime, wired) -> None:
    customer_says(client, "m-1", "Hello")
    assert client.get("/readyz").get_json()["warnings"] == []
    head = json.loads(redis.lindex(keys.inbox(THREAD), 0))
    head["received_at"] -= runtime.settings.backlog_warning_seconds + 5  # as if it had waited that long
    redis.lset(keys.inbox(THREAD), 0, json.dumps(head))
    redis.delete(keys.backpressure())

    answer = client.get("/readyz").get_json()
    assert len(answer["warnings"]) == 1 and "the oldest customer message has waited" in answer["warnings"][0]
    assert answer["checks"] == {"redis": "ok", "workers": 0}, "readiness is decided by Redis and workers only"
