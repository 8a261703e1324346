"""The flow state machine, pure: each path of an `ask` step."""

from __future__ import annotations

from connector.flows import engine
from connector.flows.definition import AskStep, Flow

ORDER = AskStep(
    name="order",
    question="ask_order_number",
    retry="ask_order_number_retry",
    attribute="order_number",
    answer="regex",
    pattern="[A-Z]{2}[0-9]{6}",
    attempts=2,
)
TOPIC = AskStep(
    name="topic", question="ask_topic", attribute="topic", answer="choices", choices=("Quote", "Order status")
)


def event(n: int, text: str = "") -> dict[str, object]:
    return {"provider_id": f"m{n}", "text": text}


def test_valid_answers_walk_the_steps_then_route_with_every_message() -> None:
    flow = Flow("intake", (ORDER, TOPIC))
    state, actions = engine.start(flow, event(0, "hi"))
    assert actions == [engine.Ask("order", "ask_order_number", (), "0:order:0")]
    assert state is not None
    state, actions = engine.receive(flow, state, event(1), "AB123456", None)
    assert actions == [
        engine.Answered("order", "order_number", "AB123456"),
        engine.Ask("topic", "ask_topic", ("Quote", "Order status"), "1:topic:0"),
    ]
    assert state is not None
    state, actions = engine.receive(flow, state, event(2), "Order status", "Quote")  # the button's payload first
    assert state is None
    assert actions[0] == engine.Answered("topic", "topic", "Quote")
    route = actions[1]
    assert isinstance(route, engine.Route) and route.outcome == "completed"
    assert [e["provider_id"] for e in route.held] == ["m0", "m1", "m2"]


def test_invalid_then_valid_sends_the_retry_once() -> None:
    flow = Flow("intake", (ORDER,))
    state, _ = engine.start(flow, event(0))
    assert state is not None
    state, actions = engine.receive(flow, state, event(1), "no idea", None)
    assert actions == [engine.Invalid("order", 1), engine.Ask("order", "ask_order_number_retry", (), "0:order:1", True)]
    assert state is not None and state.asked == 2
    state, actions = engine.receive(flow, state, event(2), "XY000001", None)
    assert state is None and isinstance(actions[-1], engine.Route)


def test_attempts_exhausted_route_or_close() -> None:
    for on_fail in ("route", "close"):
        flow = Flow("intake", (ORDER, TOPIC), on_fail=on_fail, closing="flow_closing" if on_fail == "close" else None)
        state, _ = engine.start(flow, event(0))
        assert state is not None
        state, _ = engine.receive(flow, state, event(1), "bad", None)
        assert state is not None
        state, actions = engine.receive(flow, state, event(2), "still bad", None)
        assert state is None
        if on_fail == "route":
            assert isinstance(actions[-1], engine.Route) and actions[-1].outcome == "failed"
            assert len(actions[-1].held) == 3, "the wrong answers reach the agent too"
        else:
            assert actions[-1] == engine.Close("flow_closing", "order")


def test_state_round_trips_through_json() -> None:
    state = engine.FlowState("intake", 1, 2, [event(0, "hi")])
    assert engine.FlowState.from_json(state.to_json()) == state
