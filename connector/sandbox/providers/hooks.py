"""What every provider simulator's blueprint does the same way: answer a Refusal in that provider's
error shape, and log each send attempt (refused ones included, so tests can count retries)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Blueprint, Response, jsonify, request

from connector.sandbox.providers.store import ProviderState, Refusal


def install_hooks(
    bp: Blueprint,
    state: ProviderState,
    *,
    error_body: Callable[[Refusal], Mapping[str, Any]],
    send_channel: Callable[[str | None], str | None],
) -> None:
    """`send_channel(endpoint)` names the channel when the endpoint is a send, else None."""

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
