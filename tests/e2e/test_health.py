"""Liveness and readiness."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for


def test_healthz_answers_without_dependencies(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_not_ready_without_a_worker(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"redis": "ok", "workers": 0}


@pytest.mark.e2e
def test_readyz_is_ready_with_redis_and_a_live_worker(client, start_worker):
    start_worker()
    response = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r, what="ready")
    assert response.get_json()["checks"]["workers"] == 1
