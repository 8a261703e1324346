"""How a chat looks to the agent API and its events (the `chat` object of docs/hybrid.md):
`{"chat_id", "integration", "queue", "state", "channel", "customer": {"id", "name"?, "locale"?, "details"},
"attributes", "started_at", "offer_expires_at"?}`."""

from __future__ import annotations

from typing import Any

from connector.backends.hybrid.state import Chat


def chat_view(chat: Chat) -> dict[str, Any]:
    customer = dict(chat.customer or {})
    view: dict[str, Any] = {
        "chat_id": chat.chat_id,
        "integration": chat.integration,
        "queue": chat.queue,
        "state": chat.state,
        "channel": chat.channel,
        "customer": {
            "id": customer.get("id", ""),
            "name": customer.get("name"),
            "locale": customer.get("locale"),
            "details": customer.get("details") or {},
        },
        "attributes": dict(chat.attributes or {}),
        "started_at": chat.created_at,
    }
    if chat.state == "offered" and chat.offer_expires_at:
        view["offer_expires_at"] = chat.offer_expires_at
    if chat.state == "closed":
        view.update(closed_at=chat.closed_at, closed_by=chat.closed_by, wrap_up=chat.wrap_up)
    return view
