"""Dead letters seen from the operator's side: requeue with a wake-up, and whose conversation a letter
belongs to. Shared by the UI and the API so both act the same way."""

from __future__ import annotations

import logging

from connector.operations import conversations
from connector.queues import enqueue_dispatch
from connector.runtime import Runtime
from connector.store import dead_letters

log = logging.getLogger(__name__)


def requeue_letter(rt: Runtime, letter_id: str) -> dead_letters.DeadLetter | None:
    """Put the letter back on its thread's box and make sure a worker comes; None if it is gone.
    Shared by the UI and the API so both wake the thread the same way."""
    letter = dead_letters.get(rt.redis, letter_id)
    if letter is None:
        return None
    slot = dead_letters.requeue(rt.redis, rt.boxes, letter_id)
    if slot is None:  # requeued or deleted by someone else meanwhile
        return None
    if slot:
        enqueue_dispatch(rt.redis, slot)
    log.info("dead letter requeued", extra={"dead_letter": letter_id, "conversation": letter.thread})
    return letter


def conversation_of(letter: dead_letters.DeadLetter, rows: dict[str, conversations.Summary]) -> dict[str, str] | None:
    """Channel, asset and customer of a letter's conversation: from its thread, or, when the thread
    was never written (a first message that failed), from the customer event in the payload."""
    row = rows.get(letter.thread)
    if row is not None:
        return {"channel": row.channel, "asset": row.asset, "customer": row.customer, "state": row.state.value}
    payload = letter.payload()
    if isinstance(payload, dict) and all(isinstance(payload.get(k), str) for k in ("channel", "asset", "customer")):
        return {"channel": payload["channel"], "asset": payload["asset"], "customer": payload["customer"], "state": ""}
    return None
