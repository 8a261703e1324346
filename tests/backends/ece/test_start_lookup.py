"""A start whose answer was never recorded (worker killed inside the call, or a timeout) is looked
up by its client reference before a second one is started (docs/protocols/ece.md, "Start
conversation"; docs/architecture.md, "Idempotent effects"). ECE is mocked with `responses`; Redis,
the effects record and the outbox are real."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import redis as redis_lib
import requests
import responses

from connector.backends.ece.backend import EceBackend, start_reference
from connector.backends.ece.client import REFERENCE_ATTRIBUTE, EceClient
from connector.channels.base import EventKind, InboundEvent, thread_id_for
from connector.config.model import EntryPoint, Integration
from connector.conversations import State
from connector.errors import PermanentError, RetryableError
from connector.runtime import Runtime
from connector.store.boxes import Box
from connector.store.effects import Effects
from connector.store.threads import Thread
from tests.backends.ece.test_client import (
    BASE,
    CONV,
    CONVERSATIONS,
    KEY,
    SECRET,
    with_availability,
    with_config,
    with_token,
)
from tests.helpers import logged_text

REF = "cc-0123456789abcdef0123456789abcdef-1-a1b2c3d4"
LOOKUP = f"{CONVERSATIONS}?reference={REF}"
OTHER = "7f0e1d2c-3b4a-4596-8786-a5b4c3d2e1f0"
_names = itertools.count()


def integration(**overrides: object) -> Integration:
    # A new name per test: the availability answer is cached per process and integration name.
    fields: dict[str, object] = {
        "name": f"ece-lookup-{next(_names)}",
        "type": "ece",
        "base_url": BASE,
        "client_key": KEY,
        "client_secret": SECRET,
        "entry_points": (EntryPoint(name="Support", id="1001"),),
    }
    fields.update(overrides)
    return Integration(**fields)  # type: ignore[arg-type]


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def ece(redis: redis_lib.Redis) -> EceClient:
    return EceClient(integration(), redis)


def listed(*entries: dict[str, object]) -> dict[str, object]:
    return {"conversations": list(entries)}


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return logged_text([r for r in caplog.records if r.levelno == logging.WARNING])


# -- the client: find_conversation ------------------------------------------------------------------


def test_a_conversation_carrying_the_reference_is_found(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, json=listed({"id": CONV, "reference": REF, "state": "queued"}))
    assert ece.find_conversation(REF) == CONV
    request = mocked.calls[-1].request
    assert request.headers["Authorization"] == "Bearer tok-1"
    assert parse_qs(urlsplit(request.url).query) == {"reference": [REF]}


def test_the_reference_may_be_echoed_as_the_custom_attribute(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    entry = {"id": CONV, "customAttributes": [{"name": REFERENCE_ATTRIBUTE, "value": REF}]}
    mocked.get(LOOKUP, json=listed(entry))
    assert ece.find_conversation(REF) == CONV


def test_no_conversation_is_none_without_a_warning(
    mocked: responses.RequestsMock, ece: EceClient, caplog: pytest.LogCaptureFixture
) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, json=listed())
    with caplog.at_level(logging.INFO, logger="connector.backends.ece.client"):
        assert ece.find_conversation(REF) is None
    assert "no conversation for an interrupted start" in caplog.text
    assert warnings_of(caplog) == ""


@pytest.mark.parametrize("status", [404, 405, 501, 400, 403])
def test_a_lookup_ece_does_not_serve_is_none_and_warns_of_a_duplicate(
    mocked: responses.RequestsMock, ece: EceClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, status=status, json={"code": f"{status}-100", "developerMessage": "no"})
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        assert ece.find_conversation(REF) is None
    text = warnings_of(caplog)
    assert f"ECE answered {status}" in text and "a duplicate conversation may follow" in text
    assert "api_paths.find_conversation" in text


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_an_outage_of_the_lookup_is_retried_not_guessed(
    mocked: responses.RequestsMock, ece: EceClient, status: int
) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, status=status)
    with pytest.raises(RetryableError, match=f"ECE answered {status} to find_conversation"):
        ece.find_conversation(REF)


def test_a_lookup_that_times_out_is_retried(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(RetryableError, match="did not answer"):
        ece.find_conversation(REF)


def test_entries_without_the_reference_are_never_adopted(
    mocked: responses.RequestsMock, ece: EceClient, caplog: pytest.LogCaptureFixture
) -> None:
    """An ECE that ignores the query lists every conversation: none of them is this start's."""
    with_token(mocked)
    mocked.get(LOOKUP, json=listed({"id": OTHER}, {"id": CONV, "reference": "cc-someone-else"}))
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        assert ece.find_conversation(REF) is None
    assert "none carrying the reference" in warnings_of(caplog)


@pytest.mark.parametrize("body", ["<html>ok</html>", json.dumps({"conversation": {"id": CONV}})])
def test_an_answer_without_a_conversations_list_is_a_lookup_not_served(
    mocked: responses.RequestsMock, ece: EceClient, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, body=body)
    with caplog.at_level(logging.WARNING, logger="connector.backends.ece.client"):
        assert ece.find_conversation(REF) is None
    assert "no conversations list" in warnings_of(caplog)


def test_an_ended_conversation_is_not_adopted(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    mocked.get(LOOKUP, json=listed({"id": CONV, "reference": REF, "state": "ended"}))
    assert ece.find_conversation(REF) is None


def test_the_lookup_path_can_be_overridden(mocked: responses.RequestsMock, redis: redis_lib.Redis) -> None:
    client = EceClient(integration(api_paths={"find_conversation": "/custom/search?ref={ref}&v={v}"}), redis)
    with_token(mocked)
    mocked.get(f"{BASE}/custom/search?ref={REF}&v=v19", json=listed({"id": CONV, "reference": REF}))
    assert client.find_conversation(REF) == CONV


def test_the_reference_is_percent_encoded(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    odd = "a&b=c d/é"
    mocked.get(CONVERSATIONS, json=listed({"id": CONV, "reference": odd}))
    assert ece.find_conversation(odd) == CONV
    assert parse_qs(urlsplit(mocked.calls[-1].request.url).query) == {"reference": [odd]}


def test_a_start_carries_its_reference_as_a_custom_attribute(mocked: responses.RequestsMock, ece: EceClient) -> None:
    with_token(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    ece.start_conversation("1001", customer={}, custom_attributes={"fb.username": "ada"}, reference=REF)
    assert json.loads(mocked.calls[-1].request.body)["customAttributes"] == [
        {"name": "fb.username", "value": "ada"},
        {"name": REFERENCE_ATTRIBUTE, "value": REF},
    ]


# -- the backend: a repeated start item ---------------------------------------------------------------

CUSTOMER = "15551239876"
START = "start:1"
"""The start effect of the thread's first conversation (one start per conversation of a thread)."""


def start_item(runtime: Runtime, ece_integration: Integration, effects: Effects) -> tuple[Thread, str | None]:
    """Handle one customer message that starts a conversation, as the drain does (fresh thread state,
    as a repeat reloads it: the thread is written only when the item commits)."""
    thread = Thread(
        id=thread_id_for("whatsapp", "test-whatsapp", CUSTOMER),
        channel="whatsapp",
        asset="test-whatsapp",
        customer=CUSTOMER,
        state=State.NEW,
        sequence=1,
        integration=ece_integration.name,
        entry_point="Support",
    )
    event = InboundEvent("whatsapp", "test-whatsapp", CUSTOMER, EventKind.MESSAGE, "wamid.L1", 1_790_000_000, "Hello")
    note = EceBackend().deliver(runtime, ece_integration, thread, event, start=True, effects=effects)
    return thread, note


def interrupted_start(runtime: Runtime, mocked: responses.RequestsMock, ece_integration: Integration) -> Effects:
    """The first handling of the item: the start is sent and never answered (a read timeout here;
    a killed worker leaves the same record behind)."""
    effects = Effects(runtime.redis, Box.IN, thread_id_for("whatsapp", "test-whatsapp", CUSTOMER))
    with_token(mocked)
    with_availability(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, body=requests.exceptions.ReadTimeout("ECE took the start and never answered"))
    with pytest.raises(RetryableError):
        start_item(runtime, ece_integration, effects)
    assert effects.get(START) is None, "no answer, nothing recorded as done"
    reference = effects.attempted(START)
    assert reference is not None and reference.startswith("cc-"), "but the attempt was recorded before the call"
    sent = json.loads(mocked.calls[-1].request.body)["customAttributes"]
    assert {"name": REFERENCE_ATTRIBUTE, "value": reference} in sent
    return effects


def requests_to(mocked: responses.RequestsMock, method: str, url: str) -> list[responses.Call]:
    return [c for c in mocked.calls if c.request.method == method and c.request.url.split("?")[0] == url]


def test_found_the_conversation_is_adopted_and_no_second_started(
    runtime: Runtime, mocked: responses.RequestsMock
) -> None:
    ece_integration = integration()
    effects = interrupted_start(runtime, mocked, ece_integration)
    reference = effects.attempted(START)
    mocked.calls.reset()

    mocked.get(f"{CONVERSATIONS}?reference={reference}", json=listed({"id": CONV, "reference": reference}))
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    thread, note = start_item(runtime, ece_integration, effects)

    assert thread.remote_id == CONV and thread.state is State.QUEUED
    assert effects.get(START) == CONV
    assert requests_to(mocked, "POST", CONVERSATIONS) == [], "no second start"
    assert not any("/system/egain/chat/entrypoint" in c.request.url for c in mocked.calls), "no gate: it exists"
    assert json.loads(mocked.calls[-1].request.body)["content"] == "Hello", "the message goes into it"
    assert note is not None and note.startswith("started on")


def test_not_found_a_conversation_is_started_with_the_same_reference(
    runtime: Runtime, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    ece_integration = integration()
    effects = interrupted_start(runtime, mocked, ece_integration)
    reference = effects.attempted(START)
    mocked.calls.reset()

    mocked.get(f"{CONVERSATIONS}?reference={reference}", json=listed())
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    with caplog.at_level(logging.WARNING):
        thread, _ = start_item(runtime, ece_integration, effects)

    assert thread.remote_id == CONV
    (start,) = requests_to(mocked, "POST", CONVERSATIONS)
    assert {"name": REFERENCE_ATTRIBUTE, "value": reference} in json.loads(start.request.body)["customAttributes"]
    assert warnings_of(caplog) == ""


def test_lookup_not_served_a_conversation_is_started_and_a_warning_says_a_duplicate_may_follow(
    runtime: Runtime, mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    ece_integration = integration()
    effects = interrupted_start(runtime, mocked, ece_integration)
    reference = effects.attempted(START)
    mocked.calls.reset()

    mocked.get(f"{CONVERSATIONS}?reference={reference}", status=405)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": OTHER}})
    mocked.post(f"{CONVERSATIONS}/{OTHER}/messages", status=201, json={"id": "m1"})
    with caplog.at_level(logging.WARNING):
        thread, _ = start_item(runtime, ece_integration, effects)

    assert thread.remote_id == OTHER
    assert len(requests_to(mocked, "POST", CONVERSATIONS)) == 1
    assert "a duplicate conversation may follow" in warnings_of(caplog)


def test_a_first_start_asks_nothing_before_starting(runtime: Runtime, mocked: responses.RequestsMock) -> None:
    """No earlier attempt: no lookup, the usual gate and start (the lookup costs only repeats)."""
    ece_integration = integration()
    effects = Effects(runtime.redis, Box.IN, thread_id_for("whatsapp", "test-whatsapp", CUSTOMER))
    with_token(mocked)
    with_availability(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    start_item(runtime, ece_integration, effects)
    assert requests_to(mocked, "GET", CONVERSATIONS) == []
    assert effects.get(START) == CONV


def test_a_permanent_refusal_of_the_lookup_never_dead_letters_the_message(
    runtime: Runtime, mocked: responses.RequestsMock
) -> None:
    """A 4xx of the lookup means "cannot ask", never "drop the customer's message"."""
    ece_integration = integration()
    effects = interrupted_start(runtime, mocked, ece_integration)
    reference = effects.attempted(START)
    mocked.calls.reset()
    mocked.get(f"{CONVERSATIONS}?reference={reference}", status=400, json={"developerMessage": "unknown parameter"})
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    try:
        thread, _ = start_item(runtime, ece_integration, effects)
    except PermanentError as exc:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"the lookup's 400 became permanent: {exc}")
    assert thread.remote_id == CONV


def test_the_reference_names_the_thread_and_sequence_and_differs_per_item() -> None:
    thread = Thread(id="0123456789abcdef0123456789abcdef", sequence=3)
    first, second = start_reference(thread), start_reference(thread)
    assert first.startswith("cc-0123456789abcdef0123456789abcdef-3-") and first != second


def test_a_conversation_gone_right_after_its_start_starts_the_next_one_once(
    runtime: Runtime, mocked: responses.RequestsMock
) -> None:
    """ECE ends the new conversation before the first message reaches it: the item starts the next
    conversation (the thread's next sequence) once, instead of reusing the start it just recorded."""
    ece_integration = integration()
    effects = Effects(runtime.redis, Box.IN, thread_id_for("whatsapp", "test-whatsapp", CUSTOMER))
    with_token(mocked)
    with_availability(mocked)
    with_config(mocked)
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": "gone-at-once"}})
    mocked.post(CONVERSATIONS, status=201, json={"conversation": {"id": CONV}})
    mocked.post(f"{CONVERSATIONS}/gone-at-once/messages", status=404, json={"code": "404-101"})
    mocked.post(f"{CONVERSATIONS}/{CONV}/messages", status=201, json={"id": "m1"})
    thread, _note = start_item(runtime, ece_integration, effects)
    assert (thread.remote_id, thread.sequence) == (CONV, 2)
    starts = [c for c in mocked.calls if c.request.method == "POST" and c.request.url == CONVERSATIONS]
    assert len(starts) == 2
