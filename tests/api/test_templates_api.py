"""The templates API: the matrix, one cell at either scope, save / reset, preview naming the line,
and "send as test" refused outside the sandbox."""

from __future__ import annotations

from connector.config.schemas import MESSAGE_TYPES

EP = {"integration": "Helpdesk", "entry_point": "Billing"}


def test_the_matrix_lists_every_type_and_locale_with_its_origin(api_client):
    answer = api_client("viewer").get("/api/v1/templates")
    assert answer.status_code == 200
    body = answer.json
    assert body["types"] == list(MESSAGE_TYPES) and body["locales"] == ["en", "es"]
    assert len(body["cells"]) == len(MESSAGE_TYPES) * 2
    welcome = next(c for c in body["cells"] if c["type"] == "welcome" and c["locale"] == "en")
    assert welcome["origin"] == "file" and welcome["origin_label"] == "shipped file"
    assert welcome["where"] == "message_templates/en/welcome.txt.j2" and welcome["integration"] is None


def test_save_read_and_reset_a_deployment_override(api_client):
    editor = api_client("editor")
    saved = editor.put("/api/v1/templates/en/agent_assigned", json={"text": "Hi, {{ agent.name }} here."})
    assert saved.status_code == 200, saved.json
    assert saved.json["origin"] == "deployment" and saved.json["override"] == "locale"
    read = api_client("viewer").get("/api/v1/templates/en/agent_assigned").json
    assert read["text"] == "Hi, {{ agent.name }} here." and read["where"] == "deployment override (en)"

    reset = editor.delete("/api/v1/templates/en/agent_assigned")
    assert reset.status_code == 200
    assert reset.json["removed"] == "locale" and reset.json["origin"] == "file"
    assert editor.delete("/api/v1/templates/en/agent_assigned").json["removed"] is None


def test_a_broken_template_is_a_422_naming_its_line(api_client, runtime):
    answer = api_client("editor").put("/api/v1/templates/en/welcome", json={"text": "Hello\n{% if agent %}\nno end"})
    assert answer.status_code == 422
    assert answer.json["errors"]["json"]["text"][0].startswith("line 3: ")
    assert runtime.overrides.templates() == {}


def test_the_preview_renders_with_the_sample_context_or_names_the_line(api_client):
    viewer_refused = api_client("viewer").post(
        "/api/v1/templates/preview", json={"type": "welcome", "locale": "en", "text": "x"}
    )
    assert viewer_refused.status_code == 403
    editor = api_client("editor")
    good = editor.post(
        "/api/v1/templates/preview", json={"type": "agent_assigned", "locale": "en", "text": "With {{ agent.name }}"}
    )
    assert good.status_code == 200 and good.json == {"text": "With CiscoAgent1", "off": False}
    empty = editor.post("/api/v1/templates/preview", json={"type": "welcome", "locale": "en", "text": ""})
    assert empty.json == {"text": "", "off": True}
    broken = editor.post(
        "/api/v1/templates/preview", json={"type": "welcome", "locale": "en", "text": "ok\n{{ customer.name }"}
    )
    assert broken.status_code == 422 and broken.json["errors"]["json"]["text"][0].startswith("line 2: ")
    unknown = editor.post("/api/v1/templates/preview", json={"type": "bye", "locale": "en", "text": "x"})
    assert unknown.status_code == 422 and "type" in unknown.json["errors"]["json"]


def test_an_entry_point_override_through_the_query_scope(api_client, runtime, helpdesk):
    editor = api_client("editor")
    saved = editor.put("/api/v1/templates/es/welcome", query_string=EP, json={"text": "¡Hola!", "all_locales": False})
    assert saved.status_code == 200, saved.json
    assert saved.json["origin"] == "entry_point" and saved.json["entry_point"] == "Billing"
    stored = runtime.overrides.raw("integrations", "Helpdesk")["entry_points"][0]["messages"]
    assert stored == {"es": {"welcome": "¡Hola!"}}
    matrix = editor.get("/api/v1/templates", query_string=EP).json
    origins = {(c["type"], c["locale"]): c["origin"] for c in matrix["cells"]}
    assert origins[("welcome", "es")] == "entry_point" and origins[("welcome", "en")] == "file"
    assert editor.delete("/api/v1/templates/es/welcome", query_string=EP).json["removed"] == "locale"


def test_scope_errors_name_what_is_wrong(api_client):
    editor = api_client("editor")
    half = editor.get("/api/v1/templates", query_string={"integration": "TestRouter"})
    assert half.status_code == 422 and "entry_point" in half.json["errors"]["json"]
    missing = editor.get("/api/v1/templates/en/welcome", query_string={"integration": "Nope", "entry_point": "X"})
    assert missing.status_code == 404
    provisioned = editor.put(
        "/api/v1/templates/en/welcome",
        query_string={"integration": "TestRouter", "entry_point": "Support"},
        json={"text": "Hi"},
    )
    assert provisioned.status_code == 409 and "channels.yaml" in provisioned.json["message"]
    bad_locale = editor.put("/api/v1/templates/x!/welcome", json={"text": "Hi"})
    assert bad_locale.status_code == 422 and "locale" in bad_locale.json["errors"]["json"]


def test_a_viewer_cannot_save_or_reset(api_client, runtime):
    viewer = api_client("viewer")
    assert viewer.put("/api/v1/templates/en/welcome", json={"text": "x"}).status_code == 403
    assert viewer.delete("/api/v1/templates/en/welcome").status_code == 403
    assert runtime.overrides.templates() == {}


def test_send_as_test_is_a_409_outside_the_sandbox(api_client):
    answer = api_client("editor").post(
        "/api/v1/templates/send-test", json={"type": "welcome", "locale": "en", "asset": "sms/test-sms"}
    )
    assert answer.status_code == 409 and "only in the sandbox" in answer.json["message"]


def test_the_openapi_documents_the_error_answers(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/templates/{locale}/{message_type}"]["put"]["responses"]) >= {"200", "404", "409", "422"}
    assert set(paths["/api/v1/templates/send-test"]["post"]["responses"]) >= {"200", "409", "422", "502"}
    assert set(paths["/api/v1/rules/{name}"]["put"]["responses"]) >= {"200", "404", "409", "422"}
    body = paths["/api/v1/rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Rule"}


def test_a_broken_template_is_told_beside_the_cells_other_errors(api_client, runtime):
    body = {"text": "Hello {{ agent.name }", "all_locales": True}
    answer = api_client("editor").put("/api/v1/templates/en/welcome", json=body)
    assert answer.status_code == 422
    assert set(answer.json["errors"]["json"]) == {"all_locales", "text"}, answer.json
    assert "line 1" in answer.json["errors"]["json"]["text"][0]
    assert runtime.overrides.templates() == {}
