"""What every provider simulator's blueprint does the same way: answer a Refusal in that provider's
error shape, log each send attempt (refused ones included, so tests can count retries), and answer
each send as late as the channel's delay says (`SendLatency`), counting it in flight meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from connector.sandbox.providers.store import ProviderState, Refusal


def install_hooks(
    bp: Blueprint,
    state: ProviderState,
    *,
    error_body: Callable[[Refusal], Mapping[str, Any]],
    send_channel: Callable[[str | None], str | None],
) -> None:
    """`send_channel(endpoint)` names the channel when the endpoint is a send, else None."""

    @bp.before_request
    def answer_late() -> None:
        # Before anything of the send is looked at: a slow provider is slow to refuse too, and what
        # it accepts is recorded (sent) only once it answers. Typing indicators, sender actions and
        # read receipts go to the same send endpoints, so they are as slow as messages.
        if (channel := send_channel(request.endpoint)) is None:
            return
        g.provider_send = True
        if delay := state.latency.began(channel):
            time.sleep(delay)

    @bp.teardown_request
    def answered(_exc: BaseException | None) -> None:
        if g.pop("provider_send", False):
            state.latency.ended()

    @bp.errorhandler(Refusal)
    def refused(exc: Refusal) -> Response:
        response = jsonify(error_body(exc))
        response.status_code = exc.status
        response.headers.update(exc.response_headers())
        return response

    @bp.after_request
    def log_send(response: Response) -> Response:
        if (channel := send_channel(request.endpoint)) is not None:
            state.store.log_request(channel, request.method, request.path, response.status_code)
        return response
