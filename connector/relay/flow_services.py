"""The calls of a flow's `verify` and `bot` steps, made by the drain under the thread's lease
(connector/flows/calls.py says what their results do).

Each call's result is recorded as an effect of the inbox item before anything else happens, so an
item repeated after a crash feeds the engine the same result without calling again. A retryable
failure (timeout, 5xx, 429) leaves the item in the inbox like an ECE outage does: the drain's retry
machinery repeats it, in order, after its backoff. Past the retry horizon (a verify step) or the
step's `tries` (a bot step), the drain records that it gave up (`give_up`) and handles the item once
more: the engine then applies the flow's `on_fail`, or hands the bot's customer over, never drops it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from connector.backends import outbox
from connector.channels.base import EventKind, InboundEvent
from connector.errors import PermanentError, RetryableError
from connector.flows import bot, calls, engine, verify
from connector.flows.branching import Facts
from connector.flows.definition import BotStep, Flow, VerifyStep
from connector.flows.service import idempotency_key
from connector.relay.retry import RetryDecision
from connector.runtime import Runtime
from connector.store.boxes import Box
from connector.store.effects import Effects
from connector.store.threads import Thread

log = logging.getLogger(__name__)

ACTIONS = (calls.Verified, calls.StepFailed, calls.Say, calls.HandedOver)
"""The actions `apply` does (the calls themselves are made by `settle`)."""


class FlowCallRetry(RetryableError):
    """A flow step's call failed retryably; `effect` is where giving up is recorded, `tries` the
    step's limit (None: the retry horizon decides)."""

    def __init__(self, cause: RetryableError, effect: str, tries: int | None) -> None:
        super().__init__(str(cause), wait=cause.wait, outage=cause.outage)
        self.effect, self.tries = effect, tries


def gives_up(exc: RetryableError, decision: RetryDecision) -> bool:
    """Whether the drain stops retrying `exc` and lets the flow go on without the call."""
    if not isinstance(exc, FlowCallRetry):
        return False
    return decision.give_up or (exc.tries is not None and decision.attempts >= exc.tries)


def give_up(effects: Effects, exc: FlowCallRetry, attempts: int) -> None:
    """Record the call as failed for good, so the item's next handling goes on without it."""
    reason = f"no answer after {attempts} attempt(s): {exc}"
    effects.record(exc.effect, calls.CallResult(failure=reason, gave_up=True).to_json())


def settle(
    runtime: Runtime,
    thread: Thread,
    flow: Flow,
    state: engine.FlowState | None,
    actions: list[engine.Action],
    effects: Effects | None,
    facts: Facts | None,
    item: str = "",
) -> tuple[engine.FlowState | None, list[engine.Action]]:
    """Make the calls `actions` ask for, feeding each result to the engine, until the flow waits for
    the customer or ends; returns the state and every other action, in order, to apply. `item` is the
    inbox item's provider id, from which each call's idempotency key is derived."""
    effects = effects or Effects(runtime.redis, Box.IN, thread.id)
    done: list[engine.Action] = []
    queue = list(actions)
    while queue:
        action = queue.pop(0)
        if isinstance(action, calls.Verify | calls.BotTurn) and state is not None:
            result = _call(runtime, thread, flow, action, effects, _answers(thread, done), item)
            state, more = engine.resume(flow, state, action.key, result, facts)
            queue[:0] = more
        else:
            done.append(action)
    return state, done


def apply(
    runtime: Runtime, thread: Thread, entry: dict[str, Any], action: engine.Action
) -> tuple[str | None, list[InboundEvent]]:
    """Do one of ACTIONS; returns the timeline's note and events to pass on after the held ones."""
    if isinstance(action, calls.Verified):
        thread.attributes = {**thread.attributes, **action.attributes}
        entry["verified"] = action.step
        return None, []
    if isinstance(action, calls.StepFailed):
        entry["failed"] = action.step
        entry["reason"] = action.reason[:300]
        if action.template:
            outbox.flow_message(runtime, thread.id, thread.sequence, action.template, f"failed:{action.step}")
        return f"{action.step} failed: {action.reason[:300]}", []
    if isinstance(action, calls.Say):
        outbox.flow_text(runtime, thread.id, thread.sequence, action.key, action.text, action.buttons)
        entry["bot"] = action.step
        entry["replies"] = entry.get("replies", 0) + 1
        return None, []
    if isinstance(action, calls.HandedOver):
        return _handed_over(runtime, thread, entry, action)
    return None, []


def _handed_over(
    runtime: Runtime, thread: Thread, entry: dict[str, Any], action: calls.HandedOver
) -> tuple[str | None, list[InboundEvent]]:
    thread.attributes = {**thread.attributes, **action.attributes}
    entry["handover"] = action.by
    note = f"bot {action.step} handed over: {action.reason}"
    if action.entry_point and action.entry_point != thread.entry_point:
        integration = runtime.config.integration(thread.integration or "")
        if integration is not None and integration.entry_point(action.entry_point) is not None:
            thread.entry_point = action.entry_point
            note += f"; to entry point {action.entry_point}"
        else:
            note += f"; entry point {action.entry_point!r} is not configured, kept {thread.entry_point}"
    # The agent's view of the bot conversation, after the customer's held messages.
    transcript = InboundEvent(
        channel=thread.channel,
        asset=thread.asset,
        customer=thread.customer,
        kind=EventKind.MESSAGE,
        provider_id=f"{calls.TRANSCRIPT_ID_PREFIX}{thread.sequence}:{action.step}",
        timestamp=time.time(),
        text=action.transcript,
    )
    return note, [transcript]


def _call(
    runtime: Runtime,
    thread: Thread,
    flow: Flow,
    action: calls.Verify | calls.BotTurn,
    effects: Effects,
    answers: dict[str, str],
    item: str,
) -> calls.CallResult:
    effect = f"flow:{action.key}"
    if (recorded := effects.get(effect)) is not None:
        return calls.CallResult.from_json(recorded)
    step = next(s for s in flow.steps if s.name == action.step)
    name = thread.details.get("name") or thread.details.get("profile_name")
    who: dict[str, Any] = {
        "conversation_id": thread.conversation_id,
        "channel": thread.channel,
        "locale": thread.locale or str(thread.details.get("locale") or "en"),
        "customer_id": thread.customer,
        "customer_name": name if isinstance(name, str) else None,
    }
    # The same for this item and step after a crash (the service may answer the repeat from memory).
    key = idempotency_key(thread.conversation_id, item, action.step)
    started = time.monotonic()
    try:
        if isinstance(action, calls.Verify) and isinstance(step, VerifyStep):
            body = verify.verify_request(**who, answers=answers)
            attributes = verify.verify(step.url, step.secret, body, timeout=step.timeout, idempotency_key=key)
            result = calls.CallResult(attributes=attributes)
        elif isinstance(action, calls.BotTurn) and isinstance(step, BotStep):
            turn = bot.bot_turn(**who, attributes=answers, text=action.text, payload=action.payload)
            answer = bot.ask_bot(step.kind, step.url, step.secret, turn, timeout=step.timeout, idempotency_key=key)
            result = calls.CallResult(answer=answer)
        else:
            result = calls.CallResult(failure=f"step {action.step} is no longer a {step.type} step")
    except verify.VerificationFailed as exc:
        result = calls.CallResult(failure=f"not verified: {exc.reason or 'no reason given'}")
    except RetryableError as exc:
        tries = step.tries if isinstance(step, BotStep) else None
        log.warning(
            "flow call failed; will retry", extra={"conversation": thread.id, "step": step.name, "error": str(exc)}
        )
        raise FlowCallRetry(exc, effect, tries) from exc
    except PermanentError as exc:
        result = calls.CallResult(failure=exc.reason)
    effects.record(effect, result.to_json())
    log.info(
        "flow call answered",
        extra={
            "conversation": thread.id,
            "step": step.name,
            "failed": result.failure is not None,
            "ms": round((time.monotonic() - started) * 1000),
        },
    )
    return result


def _answers(thread: Thread, done: list[engine.Action]) -> dict[str, str]:
    """The conversation's attributes with this turn's answers and verifications not yet applied."""
    answers = dict(thread.attributes)
    for action in done:
        if isinstance(action, engine.Answered):
            answers[action.attribute] = action.value
        elif isinstance(action, calls.Verified):
            answers.update(action.attributes)
    return answers
