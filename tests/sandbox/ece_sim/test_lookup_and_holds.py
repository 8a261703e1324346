"""The simulator's lookup of a start by client reference ([I] docs/protocols/ece.md, "Start
conversation") and its test-only hold of a start, on the wire with `requests`; and the provider
simulators' hold of one channel's send."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connector.sandbox.holds import Holds
from tests.sandbox.ece_sim import OTHER_KEY, OTHER_SECRET, TIMEOUT, Ece, running_ece

REF = "cc-thread-1-abcd1234"


@pytest.fixture
def ece() -> Iterator[Ece]:
    with running_ece() as e:
        yield e


def with_reference(reference: str) -> dict[str, Any]:
    return {"customAttributes": [{"name": "connector_reference", "value": reference}]}


def lookup(ece: Ece, headers: dict[str, str], reference: str | None = REF) -> requests.Response:
    params = {} if reference is None else {"reference": reference}
    return requests.get(ece.conversations, params=params, headers=headers, timeout=TIMEOUT)


def test_the_conversation_started_with_a_reference_is_found(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers, **with_reference(REF))
    ece.start(headers, **with_reference("cc-thread-2-ffff0000"))
    ece.start(headers)
    answer = lookup(ece, headers)
    assert answer.status_code == 200
    assert answer.json() == {"conversations": [{"id": conv, "reference": REF, "state": "queued"}]}


def test_no_conversation_is_an_empty_list_not_a_404(ece: Ece) -> None:
    answer = lookup(ece, ece.bearer())
    assert answer.status_code == 200 and answer.json() == {"conversations": []}


def test_another_apps_conversation_is_not_listed(ece: Ece) -> None:
    ece.start(ece.bearer(OTHER_KEY, OTHER_SECRET), **with_reference(REF))
    assert lookup(ece, ece.bearer()).json() == {"conversations": []}


def test_an_ended_conversation_is_listed_with_its_state(ece: Ece) -> None:
    headers = ece.bearer()
    conv = ece.start(headers, **with_reference(REF))
    assert ece.end(headers, conv).status_code == 204
    assert lookup(ece, headers).json()["conversations"] == [{"id": conv, "reference": REF, "state": "ended"}]


def test_the_lookup_needs_a_bearer_and_a_reference(ece: Ece) -> None:
    assert lookup(ece, {}).status_code == 401
    assert lookup(ece, ece.bearer(), reference=None).status_code == 400


def test_the_lookup_switched_off_answers_405_like_an_ece_without_it(ece: Ece) -> None:
    answer = ece.control("failures", {"lookup_served": False})
    assert answer.json()["lookup_served"] is False
    assert lookup(ece, ece.bearer()).status_code == 405
    assert ece.state()["failures"]["lookup_served"] is False


def test_a_held_start_completes_once_released(ece: Ece) -> None:
    headers = ece.bearer()
    body = {"entryPoint": {"id": "1001", "lastModified": ece.last_modified("1001", headers)}, **with_reference(REF)}
    hold = ece.sim.model.holds.hold_next("start")
    answers: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answers.append(ece.start_response(headers, body)))
    caller.start()
    assert hold.wait_held(5), "the start was received"
    assert ece.sim.model.conversations == {}, "and not done while held"
    assert lookup(ece, headers).json() == {"conversations": []}, "other calls go on meanwhile"
    hold.release()
    caller.join(5)
    assert answers[0].status_code == 201
    assert [c["id"] for c in lookup(ece, headers).json()["conversations"]] == [answers[0].json()["conversation"]["id"]]


def test_the_hold_control_holds_the_next_start_and_releases_it(ece: Ece) -> None:
    headers = ece.bearer()
    body = {"entryPoint": {"id": "1001", "lastModified": ece.last_modified("1001", headers)}}
    assert ece.control("holds", {"hold": "start"}).status_code == 201
    answers: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answers.append(ece.start_response(headers, body)))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive(), "held"
    assert ece.control("holds", {"release": True}).status_code == 200
    caller.join(5)
    assert answers[0].status_code == 201, "then done and answered"
    assert ece.control("holds", {"hold": "send"}).status_code == 400


def test_holds_match_and_release_all() -> None:
    holds = Holds()
    first = holds.hold_next("sms", lambda text: text == "mine")
    holds.checkpoint("sms", "not mine")  # no hold matches: returns at once
    holds.checkpoint("apple", "mine")
    assert not first.held
    waiter = threading.Thread(target=holds.checkpoint, args=("sms", "mine"))
    waiter.start()
    assert first.wait_held(5) and first.subject == "mine"
    holds.release_all()
    waiter.join(5)
    assert not waiter.is_alive()
    holds.checkpoint("sms", "mine")  # taken once: the next goes through
