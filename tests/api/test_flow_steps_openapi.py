"""The OpenAPI document describes the flow step kinds and the chatbot contract (issue 16: "documented
in README and the API docs"): a flow's steps are one of the kinds' components, and BotStep carries
the request, the answer and the signature, pointing at docs/protocols/bots.md."""

from __future__ import annotations

from pathlib import Path

from connector.config.schemas import STEP_SCHEMAS

BOTS_MD = Path(__file__).resolve().parents[2] / "docs" / "protocols" / "bots.md"


def spec_of(api_client) -> dict:
    return api_client("viewer").get("/api/v1/openapi.json").get_json()


def test_a_flow_body_lists_every_step_kind(api_client):
    schemas = spec_of(api_client)["components"]["schemas"]
    choices = schemas["Flow"]["properties"]["steps"]["items"]["oneOf"]
    named = [choice["$ref"].rsplit("/", 1)[1] for choice in choices]
    assert named == [f"{kind.capitalize()}Step" for kind in STEP_SCHEMAS]
    for name in named:
        assert name in schemas, f"{name} is referred to but not in the document"
    assert schemas["BotStep"]["properties"]["type"]["enum"] == ["bot"]
    assert schemas["BotStep"]["required"] == ["name", "type", "url"]


def test_the_bot_step_describes_the_contract_and_points_at_its_source(api_client):
    spec = spec_of(api_client)
    bot = spec["components"]["schemas"]["BotStep"]
    text = bot["description"]
    assert "docs/protocols/bots.md" in text and BOTS_MD.is_file()
    for fact in (
        "conversation_id",
        "message: {text} or {payload}",
        "X-Connector-Timestamp",
        "X-Connector-Signature: sha256=",
        'HMAC-SHA256(secret, timestamp + "." + raw body)',
        "handover?: {entry_point?, attributes?, summary?}",
        "buttons?: [{title, payload}]",
        "Rasa",
    ):
        assert fact in text, fact
    bots_md = BOTS_MD.read_text(encoding="utf-8")
    for header in ("X-Connector-Timestamp", "X-Connector-Signature", '"handover"', '"buttons"'):
        assert header in bots_md, f"the summary names {header}, which its source must define"
    fields = bot["properties"]
    assert "X-Connector-Signature" in fields["secret"]["description"]
    assert fields["keyword"]["default"] == "agent" and "hand over" in fields["keyword"]["description"]
    assert {"url", "kind", "timeout", "tries"} <= {name for name, f in fields.items() if f.get("description")}
    flows_tag = next(tag for tag in spec["tags"] if tag["name"] == "flows")
    assert "BotStep" in flows_tag["description"] and "docs/protocols/bots.md" in flows_tag["description"]
