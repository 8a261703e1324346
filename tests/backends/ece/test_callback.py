"""`POST /ece/<integration>/callback`: authentication, batch validation, ordering, dedupe, unknown
conversations (docs/protocols/ece.md, "Callback webhook", "Callback authentication")."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from connector import create_app
from connector.runtime import Runtime
from connector.settings import Settings
from connector.store import keys
from connector.store.boxes import Box
from tests.e2e.stack import INTEGRATION, write_config

TOKEN = "e2e-callback-token"
THREAD = "0" * 32


@pytest.fixture
def ece_client(tmp_path, redis, redis_url):
    def build(callback_auth: dict | None = None):
        folder = write_config(tmp_path / "config", "http://127.0.0.1:9", "http://127.0.0.1:9")
        if callback_auth is not None:
            config = yaml.safe_load((folder / "e2e.yaml").read_text())
            config["integrations"][0]["callback_auth"] = callback_auth
            (folder / "e2e.yaml").write_text(yaml.safe_dump(config))
        settings = Settings.from_env(redis_url=redis_url, config_dir=folder, secret_key="x", data_dir=tmp_path)
        app = create_app(runtime=Runtime(settings))
        redis.set(keys.ece_conversation(INTEGRATION, "conv-1"), json.dumps({"thread": THREAD, "sequence": 1}))
        return app.test_client()

    return build


def event(event_id, kind="text/plain", conversation="conv-1", at=1_700_000_000_000, **extra):
    return {
        "id": str(event_id),
        "conversation": {"id": conversation},
        "type": {"value": kind},
        "content": f"content {event_id}",
        "sender": {"type": "user", "user": {"id": "1001", "name": "Alice"}},
        "timeStamp": at,
        **extra,
    }


def post(client, events, auth=f"Bearer {TOKEN}", body=None, content_type="application/json"):
    headers = {"Authorization": auth} if auth else {}
    data = body if body is not None else json.dumps({"message": events})
    return client.post(f"/ece/{INTEGRATION}/callback", data=data, headers=headers, content_type=content_type)


def outbox(redis):
    """The ECE event ids in the outbox, in order (each item carries its neutral event keyed `ece:<id>`)."""
    return [json.loads(i)["event"]["key"].removeprefix("ece:") for i in redis.lrange(Box.OUT.key(THREAD), 0, -1)]


def test_events_land_in_the_conversations_outbox_in_ece_order(ece_client, redis):
    client = ece_client()
    answer = post(client, [event(3, at=3000), event(1, at=1000), event(2, at=2000)])
    assert answer.status_code == 200 and answer.json["accepted"] == 3
    assert outbox(redis) == ["1", "2", "3"]


def test_a_repeated_event_is_acknowledged_and_dropped(ece_client, redis):
    client = ece_client()
    post(client, [event(1)])
    answer = post(client, [event(1), event(2)])
    assert (answer.json["accepted"], answer.json["duplicates"]) == (1, 1)
    assert outbox(redis) == ["1", "2"]


def test_an_unknown_conversation_is_acknowledged_and_not_stored(ece_client, redis):
    answer = post(ece_client(), [event(1, conversation="nobody")])
    assert answer.status_code == 200 and answer.json["unknown"] == 1
    assert outbox(redis) == []


@pytest.mark.parametrize(
    ("auth", "status"),
    [(None, 401), ("Bearer wrong", 403), (f"Basic {TOKEN}", 403), (f"bearer {TOKEN}", 200)],
)
def test_bearer_auth(ece_client, auth, status):
    assert post(ece_client(), [event(1)], auth=auth).status_code == status


def test_basic_auth(ece_client):
    client = ece_client({"type": "basic", "username": "ece", "password": "pw"})
    good = "Basic " + base64.b64encode(b"ece:pw").decode()
    bad = "Basic " + base64.b64encode(b"ece:nope").decode()
    assert post(client, [event(1)], auth=good).status_code == 200
    assert post(client, [event(2)], auth=bad).status_code == 403
    assert post(client, [event(3)], auth="Basic !!!").status_code == 403


def test_no_auth_when_the_integration_says_none(ece_client):
    assert post(ece_client({"type": "none"}), [event(1)], auth=None).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{", None),
        (json.dumps({"message": []}), "message"),
        (json.dumps({"message": [event(i) for i in range(1001)]}), "message"),
        (json.dumps({"message": ["x"]}), "message[0]"),
        (json.dumps({"message": [{**event(1), "conversation": {}}]}), "message[0].conversation.id"),
        (json.dumps({"message": [{**event(1), "type": "text"}]}), "message[0].type.value"),
        (json.dumps({"message": [{k: v for k, v in event(1).items() if k != "id"}]}), "message[0].id"),
        (json.dumps({"message": [{**event(1), "timeStamp": "yesterday"}]}), "message[0].timeStamp"),
    ],
)
def test_a_malformed_batch_is_refused_whole_naming_the_item(ece_client, redis, body, field):
    answer = post(ece_client(), None, body=body)
    assert answer.status_code == 400
    assert answer.json.get("field") == field
    assert outbox(redis) == []


def test_a_full_batch_of_1000_is_accepted(ece_client, redis):
    answer = post(ece_client(), [event(i, at=i) for i in range(1000)])
    assert answer.status_code == 200 and answer.json["accepted"] == 1000
    assert outbox(redis)[:3] == ["0", "1", "2"]


def test_wrong_content_type_and_unknown_integration(ece_client):
    client = ece_client()
    assert post(client, [event(1)], content_type="application/xml").status_code == 415
    assert client.post("/ece/Nope/callback", json={"message": [event(1)]}).status_code == 404
