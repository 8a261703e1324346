"""The REST API under schemathesis, from its own OpenAPI document (/api/v1/openapi.json): generated
requests (valid and not) never get a 5xx, and every answer matches the schema the API documents for it.

Two runs: every operation on its own (a failure names it), and the stateful one: schemathesis's state
machine chains operations by the links it infers from the document (a created item's name into the
get, replace and delete of it), so the later calls act on items that exist.

The data behind it is real: the test configuration's provisioned items, a UI integration whose ECE
is a closed loopback port (refreshes fail fast and must say so, not crash), a conversation with a
timeline, a dead letter. Requests carry an admin token, so every write path is reached.
Examples scale with the Hypothesis profile (tests/conftest.py): `make test` runs "ci", `make fuzz` "fuzz".
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error, response_schema_conformance

from connector.auth.tokens import ApiTokens
from connector.store import dead_letters, keys, threads
from connector.store.boxes import Box
from tests.conftest import add_operator

pytestmark = pytest.mark.e2e

EXAMPLES = max(25, settings.default.max_examples // 8)
"""Generated requests per operation: under "ci", enough to reach the 4xx paths of each within the
CI budget; under "fuzz", ten times that."""
SCENARIOS = max(8, settings.default.max_examples // 20)
"""State machine runs (each a chain of up to STEPS calls)."""
STEPS = 12
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def admin_token(runtime, operator_password_hash) -> str:
    add_operator(runtime.redis, "fuzzer", "admin", operator_password_hash)
    runtime.overrides.save(
        "integrations",
        {
            "name": "Fuzzed",
            "type": "ece",
            "base_url": "http://127.0.0.1:9/ece",  # the discard port: nothing listens, calls fail at once
            "client_key": "key",
            "client_secret": "secret",
            "entry_points": [{"name": "Care", "id": "2001"}],
        },
        runtime.provisioned,
        create=True,
    )
    thread = threads.Thread(id="fuzz-thread", channel="sms", asset="test-sms", customer="+15550009876")
    threads.save(runtime.redis, thread)
    runtime.redis.zadd(keys.threads_by_activity(), {thread.id: 1})
    runtime.redis.rpush(keys.timeline(thread.id), json.dumps({"at": 1, "kind": "text", "text": "hi"}))
    dead_letters.add(runtime.redis, thread.id, Box.IN, json.dumps({"kind": "text", "text": "x"}), "window closed")
    return ApiTokens(runtime.redis).issue("fuzzer", "schemathesis")


@pytest.mark.long
def test_no_500_and_every_answer_matches_its_schema(app, admin_token):
    """Every operation is run on its own (a failure names it); all failures are reported together."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the API documents its operations"
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"}, checks=CHECKS)

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)


def test_stateful_chains_of_calls(app, admin_token):
    """Create → read → replace → delete chains (and the rest) along the document's links: no 5xx,
    every answer as documented."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    machine = schema.as_state_machine()
    links = {
        (link.source.label, link.target.label) for t in machine._transitions.operations.values() for link in t.outgoing
    }
    for area in ("rules", "integrations"):  # create → get, replace, delete, inferred from the document
        for method in ("GET", "PUT", "DELETE"):
            assert (f"POST /api/v1/{area}", f"{method} /api/v1/{area}/{{name}}") in links, sorted(links)

    class Calls(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {admin_token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    run_state_machine_as_test(
        Calls,
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
