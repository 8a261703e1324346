"""The blending service on a real Redis, talking HTTP to Finesse faked at the wire (`responses`):
reason-code resolution, 202-then-notification, refusals, a halted cluster, the chat side, and 200
agents driven by concurrent threads."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import replace

import pytest
import responses

from connector.blending.agents import AgentProfile, AgentRegistry
from connector.blending.chat_side import RouterChatSide, chat_ready_from_media
from connector.blending.events import ChatAssigned, ChatEnded, ChatReadyChanged, MediaStateChanged, VoiceStateChanged
from connector.blending.machine import Chat
from connector.blending.service import BlendingService, ReasonCodeMissing
from tests.blending.finesse_wire import CONFIG, FinesseWire, Put

AGENT = "1001001"


class Clock:
    """Real time plus an offset the test moves forward (request timeouts are 30 s)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def wire():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FinesseWire(rsps)


@pytest.fixture
def registry(redis) -> AgentRegistry:
    return AgentRegistry(redis)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def start(wire: FinesseWire, registry: AgentRegistry, clock: Clock, *agent_ids: str, config=CONFIG) -> BlendingService:
    """Agents READY in Finesse and in the registry (as sync and the first notification leave them)."""
    for agent_id in agent_ids or (AGENT,):
        wire.add(agent_id)
        registry.save_profile(AgentProfile(agent_id, f"agent{agent_id}"))
    service = BlendingService.start(config, wire.client(), registry, clock=clock)
    for agent_id in agent_ids or (AGENT,):
        service.handle(VoiceStateChanged(agent_id, "READY"))
    return service


def deliver(service: BlendingService, wire: FinesseWire) -> None:
    """The notification source hands Finesse's confirmations to the service, in order."""
    for report in wire.notifications():
        service.handle(report)


# -- start -----------------------------------------------------------------------------------------


def test_start_resolves_the_configured_label_to_the_reason_code_id(wire, registry, clock) -> None:
    service = start(wire, registry, clock, config=replace(CONFIG, not_ready_reason="handling chat"))
    assert service.policy.reason_code_id == "22"
    assert service.policy.max_chats == CONFIG.max_chats


def test_start_names_the_missing_label_and_the_labels_that_exist(wire, registry, clock) -> None:
    with pytest.raises(ReasonCodeMissing, match=r'"Chatting" is not .* has: "Handling Chat", "Break"'):
        start(wire, registry, clock, config=replace(CONFIG, not_ready_reason="Chatting"))


def test_start_before_the_first_sync_reads_reason_codes_through_a_user_finesse_lists(wire, registry, clock) -> None:
    wire.add("77")
    service = BlendingService.start(CONFIG, wire.client(), registry, clock=clock)
    assert service.policy.reason_code_id == "22"
    assert "/finesse/api/User/77/ReasonCodes?category=NOT_READY" in [c.request.path_url for c in wire.rsps.calls]


def test_start_with_no_agent_anywhere_says_so(wire, registry, clock) -> None:
    with pytest.raises(ReasonCodeMissing, match="Finesse lists no agents"):
        BlendingService.start(CONFIG, wire.client(), registry, clock=clock)


# -- the tables over the wire ----------------------------------------------------------------------


def test_first_chat_puts_not_ready_with_reason_and_request_id_then_last_chat_end_restores_ready(
    wire, registry, clock
) -> None:
    service = start(wire, registry, clock)
    state = service.handle(ChatAssigned(AGENT, "c1"))
    assert wire.puts == [Put(AGENT, f"/finesse/api/User/{AGENT}", "NOT_READY", "22", f"cc-{AGENT}-1")]
    assert (state.chat, state.request.open, registry.due()) == (Chat.ACTIVE, True, [AGENT])

    deliver(service, wire)  # Finesse's Update echoes the requestId: the connector's own change
    state = registry.state(AGENT)
    assert (state.voice, state.voice_reason_id, state.voice_hold, registry.due()) == ("NOT_READY", "22", True, [])

    service.handle(ChatEnded(AGENT, "c1"))
    assert wire.puts[-1] == Put(AGENT, f"/finesse/api/User/{AGENT}", "READY", None, f"cc-{AGENT}-2")
    deliver(service, wire)
    state = registry.state(AGENT)
    assert (wire.agents[AGENT].state, state.voice, state.chat, state.voice_hold) == (
        "READY",
        "READY",
        Chat.READY,
        False,
    )


def test_a_call_interrupts_the_routers_chat_side_and_its_end_lifts_it(wire, registry, clock, redis) -> None:
    service = start(wire, registry, clock)
    router = RouterChatSide(redis)
    wire.start_call(AGENT)
    deliver(service, wire)
    assert (registry.state(AGENT).chat, router.is_interrupted(AGENT)) == (Chat.INTERRUPTED, True)
    wire.end_call(AGENT)
    deliver(service, wire)
    assert (registry.state(AGENT).chat, router.is_interrupted(AGENT)) == (Chat.READY, False)
    assert wire.puts == []


def test_agents_own_not_ready_is_never_undone(wire, registry, clock) -> None:
    service = start(wire, registry, clock)
    service.handle(ChatAssigned(AGENT, "c1"))
    deliver(service, wire)
    service.handle(replace(wire.set(AGENT, "NOT_READY", "5"), request_id="desktop-1"))
    service.handle(ChatEnded(AGENT, "c1"))
    assert [p.state for p in wire.puts] == ["NOT_READY"]
    assert (wire.agents[AGENT].state, wire.agents[AGENT].reason_code_id) == ("NOT_READY", "5")


# -- Finesse does not take a change ----------------------------------------------------------------


def test_refusal_is_recorded_and_reconcile_reapplies_once_finesse_allows_it(wire, registry, clock) -> None:
    service = start(wire, registry, clock)
    wire.start_call(AGENT)  # its notification is not delivered yet: the connector still thinks READY
    state = service.handle(ChatAssigned(AGENT, "c1"))
    assert (state.refused, registry.due()) == ("NOT_READY", [AGENT])
    assert "Invalid State" in state.last_error

    assert service.reconcile_all() == 1  # re-reads: TALKING, so nothing is asked mid-call
    assert len(wire.puts) == 1 and registry.due() == []
    wire.notifications()  # the TALKING report, now old news
    wire.end_call(AGENT)
    deliver(service, wire)  # READY again, with a chat open: NOT_READY is due again
    assert [p.state for p in wire.puts] == ["NOT_READY", "NOT_READY"]
    deliver(service, wire)
    assert (wire.agents[AGENT].state, registry.state(AGENT).voice_hold, registry.due()) == ("NOT_READY", True, [])


def test_halted_finesse_keeps_the_desired_state_and_reconcile_applies_it_when_a_node_is_back(
    wire, registry, clock
) -> None:
    service = start(wire, registry, clock, "1", "2", "3")
    wire.down = True
    for agent_id in ("1", "2", "3"):
        state = service.handle(ChatAssigned(agent_id, f"c{agent_id}"))
        assert (state.chat, state.refused) == (Chat.ACTIVE, "NOT_READY")
        assert "Unavailable" in state.last_error
    assert registry.due() == ["1", "2", "3"]

    reads = len(wire.rsps.calls)
    assert service.reconcile_all() == 0
    assert len(wire.rsps.calls) == reads + 1  # stops at the first 503: the cluster is down for all
    assert registry.due() == ["1", "2", "3"]

    wire.down = False
    assert service.reconcile_all() == 3
    deliver(service, wire)
    assert [wire.agents[a].state for a in ("1", "2", "3")] == ["NOT_READY"] * 3
    assert registry.due() == []


def test_lost_notification_is_confirmed_by_the_re_read_after_the_request_timeout(wire, registry, clock) -> None:
    service = start(wire, registry, clock)
    service.handle(ChatAssigned(AGENT, "c1"))
    wire.notifications()  # lost
    assert service.reconcile_all() == 0  # not due yet: Finesse may still confirm
    clock.offset += service.policy.request_timeout + 1
    assert service.reconcile_all() == 1
    state = registry.state(AGENT)
    assert (state.voice_hold, state.request.open, registry.due(), len(wire.puts)) == (True, False, [], 1)


def test_reconcile_of_an_agent_finesse_no_longer_has(wire, registry, clock) -> None:
    service = start(wire, registry, clock)
    del wire.agents[AGENT]
    registry.mark_due(AGENT, True)
    assert service.reconcile(AGENT) is None
    assert registry.due() == []


def test_reconcile_everyone_reads_all_agents_with_one_admin_call(wire, registry, clock) -> None:
    service = start(wire, registry, clock, "1", "2", "3")
    wire.add("99")  # in Finesse, not (yet) in the registry: left to agent sync
    wire.set("2", "NOT_READY", "5")
    calls = len(wire.rsps.calls)
    assert service.reconcile_all(everyone=True) == 3
    assert [c.request.path_url for c in wire.rsps.calls[calls:]] == ["/finesse/api/Users"]
    assert registry.state("2").voice_reason_id == "5"
    assert "99" not in registry.ids()


# -- ECE's chat MRD on Finesse ---------------------------------------------------------------------


def test_chat_mrd_is_interrupted_and_resumed_through_the_media_api(wire, registry, clock) -> None:
    service = start(wire, registry, clock, config=replace(CONFIG, chat_mrd_id="4"))
    wire.start_call(AGENT)
    deliver(service, wire)
    wire.end_call(AGENT)
    deliver(service, wire)
    media = f"/finesse/api/User/{AGENT}/Media/4"
    assert wire.media_puts == [
        Put(AGENT, media, "NOT_READY", "22", f"cc-{AGENT}-1"),
        Put(AGENT, media, "READY", None, f"cc-{AGENT}-2"),
    ]


def test_chat_mrd_failure_is_retried_by_reconcile(wire, registry, clock) -> None:
    service = start(wire, registry, clock, config=replace(CONFIG, chat_mrd_id="4"))
    wire.media_down = True
    wire.start_call(AGENT)
    deliver(service, wire)
    state = registry.state(AGENT)
    assert (state.chat, state.chat_held, registry.due()) == (Chat.INTERRUPTED, False, [AGENT])
    assert "chat side" in state.last_error
    assert wire.media_puts == []  # answered 503

    wire.media_down = False
    assert service.reconcile_all() == 1
    assert [p.state for p in wire.media_puts] == ["NOT_READY"]
    assert (registry.state(AGENT).chat_held, registry.due()) == (True, [])


# -- 200 agents, concurrent events -----------------------------------------------------------------


def test_two_hundred_agents_under_concurrent_events_end_as_the_tables_say(wire, registry, clock, redis) -> None:
    agent_ids = [str(2000 + i) for i in range(200)]
    service = start(wire, registry, clock, *agent_ids)
    expected: dict[str, set[str]] = {a: set() for a in agent_ids}
    expected_lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(work):
        def run(*args):
            try:
                work(*args)
            except BaseException as exc:  # surfaced by the main thread
                errors.append(exc)
                stop.set()

        return run

    @guarded
    def chats(worker: int) -> None:
        rng = random.Random(worker)
        mine: dict[str, list[str]] = {}
        for n in range(250):
            agent_id = rng.choice(agent_ids)
            if mine.get(agent_id) and rng.random() < 0.45:
                chat_id = mine[agent_id].pop(rng.randrange(len(mine[agent_id])))
                service.handle(ChatEnded(agent_id, chat_id))
                with expected_lock:
                    expected[agent_id].discard(chat_id)
            else:
                chat_id = f"w{worker}-{n}"
                mine.setdefault(agent_id, []).append(chat_id)
                with expected_lock:
                    expected[agent_id].add(chat_id)
                service.handle(ChatAssigned(agent_id, chat_id))

    @guarded
    def calls() -> None:
        rng = random.Random(99)
        for _ in range(120):
            agent_id = rng.choice(agent_ids)
            if wire.start_call(agent_id):
                time.sleep(0.001)
                wire.end_call(agent_id)

    @guarded
    def notifier() -> None:  # one XMPP connection: Finesse's Updates arrive in order
        while not stop.is_set():
            deliver(service, wire)
            time.sleep(0.002)

    workers = [threading.Thread(target=chats, args=(w,)) for w in range(3)] + [threading.Thread(target=calls)]
    listening = threading.Thread(target=notifier)
    listening.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    listening.join()
    assert not errors, errors

    for _ in range(5):  # quiesce: notifications delivered, then the periodic reconcile
        deliver(service, wire)
        clock.offset += service.policy.request_timeout + 1
        service.reconcile_all()
    deliver(service, wire)

    router = RouterChatSide(redis)
    assert registry.due() == []
    for agent_id in agent_ids:
        state, finesse, n = registry.state(agent_id), wire.agents[agent_id], len(expected[agent_id])
        assert set(state.chats) == expected[agent_id], f"agent {agent_id}: a chat event was lost"
        assert state.chat is (Chat.BUSY if n >= 5 else Chat.ACTIVE if n else Chat.READY), agent_id
        assert (finesse.state, finesse.reason_code_id) == (("NOT_READY", "22") if n else ("READY", None)), agent_id
        assert (state.voice, state.voice_reason_id) == (finesse.state, finesse.reason_code_id), agent_id
        assert not router.is_interrupted(agent_id)
    request_ids = [p.request_id for p in wire.puts]
    assert len(request_ids) == len(set(request_ids)), "a requestId was used twice"
    assert any(len(chats) >= 5 for chats in expected.values())


def test_chat_mrd_is_left_alone_when_the_agent_returns_to_chat_not_ready(wire, registry, clock) -> None:
    service = start(wire, registry, clock, config=replace(CONFIG, chat_mrd_id="4"))
    wire.start_call(AGENT)
    deliver(service, wire)
    service.handle(ChatReadyChanged(AGENT, ready=False))  # the agent's own choice during the call
    wire.end_call(AGENT)
    deliver(service, wire)
    assert [p.state for p in wire.media_puts] == ["NOT_READY"]
    assert (registry.state(AGENT).chat, registry.state(AGENT).chat_held) == (Chat.NOT_READY, False)


MEDIA_EVENTS = [
    ("agent sets the chat MRD READY", MediaStateChanged(AGENT, "4", "READY"), True),
    ("agent sets the chat MRD NOT_READY", MediaStateChanged(AGENT, "4", "NOT_READY", "5"), False),
    (
        "the connector's own change, by requestId",
        MediaStateChanged(AGENT, "4", "NOT_READY", "22", request_id="cc-1-1"),
        None,
    ),
    ("the connector's own NOT_READY, polled", MediaStateChanged(AGENT, "4", "NOT_READY", "22"), None),
    ("Finesse interrupts the MRD itself", MediaStateChanged(AGENT, "4", "INTERRUPTED"), None),
    ("another MRD", MediaStateChanged(AGENT, "9", "READY"), None),
]


@pytest.mark.parametrize(("event", "ready"), [m[1:] for m in MEDIA_EVENTS], ids=[m[0] for m in MEDIA_EVENTS])
def test_chat_mrd_changes_by_the_agent_become_chat_readiness(event, ready) -> None:
    mapped = chat_ready_from_media(event, "4", connector_reason_id="22")
    assert (mapped.ready if mapped else None) == ready
