"""Finesse `<Update>` notifications → blending events, one test per fixture in tests/fixtures/finesse/."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connector.blending.events import DialogChanged, FinesseRefused, MediaStateChanged, VoiceStateChanged
from connector.blending.finesse.updates import UpdateReader, read_update

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "finesse"
AGENT = "1001001"
NOW = 1_790_000_000.0


def read(name: str, **kwargs: object) -> list[object]:
    """As the agent's XMPP session reads it: the agent is known from the session, the extension from
    the agent's User updates."""
    kwargs.setdefault("agent_id", AGENT)
    kwargs.setdefault("extension", AGENT)
    return read_update((FIXTURES / name).read_bytes(), now=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def test_user_ready() -> None:
    assert read("user_ready.xml") == [
        VoiceStateChanged(agent_id=AGENT, state="READY", at=NOW, extension=AGENT),
    ]


def test_user_not_ready_reason() -> None:
    assert read("user_not_ready_reason.xml") == [
        VoiceStateChanged(
            agent_id=AGENT,
            state="NOT_READY",
            reason_code_id="16",
            reason_label="Handling Chat",
            at=NOW,
            request_id="cc-1001001-7",
            extension=AGENT,
        )
    ]


def test_user_update_names_its_agent_in_source() -> None:
    """Read outside a session (no agent given), the agent comes from `<source>`."""
    [event] = read("user_ready.xml", agent_id=None)
    assert isinstance(event, VoiceStateChanged)
    assert event.agent_id == AGENT


def test_dialog_update_outside_a_session_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """A dialog's own source (/finesse/api/Dialog/{id}) does not say whose it is."""
    assert read("dialog_put_active.xml", agent_id=None) == []
    assert "no agent for source" in caplog.text


def test_user_capitalised_talking_pending() -> None:
    """REST-style `<User>` inside a notification (docs samples show both cases)."""
    assert read("user_capitalised_talking_pending.xml") == [
        VoiceStateChanged(agent_id=AGENT, state="TALKING", pending_state="NOT_READY", at=NOW, extension=AGENT)
    ]


def test_dialogs_post_preroute_acd_in() -> None:
    assert read("dialogs_post_preroute_acd_in.xml") == [
        DialogChanged(agent_id=AGENT, dialog_id="16817292", call_type="PREROUTE_ACD_IN", state="ALERTING", at=NOW)
    ]


def test_dialog_put_active() -> None:
    assert read("dialog_put_active.xml") == [
        DialogChanged(agent_id=AGENT, dialog_id="16817292", call_type="PREROUTE_ACD_IN", state="ACTIVE", at=NOW)
    ]


def test_dialog_put_dropped_is_ended() -> None:
    assert read("dialog_put_dropped.xml") == [
        DialogChanged(
            agent_id=AGENT, dialog_id="16817292", call_type="PREROUTE_ACD_IN", state="DROPPED", ended=True, at=NOW
        )
    ]


def test_dialog_delete_is_ended_whatever_the_participant_state() -> None:
    [event] = read("dialog_delete.xml")
    assert isinstance(event, DialogChanged)
    assert (event.dialog_id, event.call_type, event.ended) == ("16817292", "PREROUTE_ACD_IN", True)


def test_dialog_delete_without_data_ends_by_source() -> None:
    """The agent comes from the XMPP session; the dialog id from `<source>`."""
    assert read("dialog_delete_without_data.xml", agent_id=AGENT) == [
        DialogChanged(agent_id=AGENT, dialog_id="16817299", call_type="", state="DROPPED", ended=True, at=NOW)
    ]


def test_dialogs_post_consult_links_the_held_call() -> None:
    assert read("dialogs_post_consult.xml") == [
        DialogChanged(
            agent_id=AGENT,
            dialog_id="16817301",
            call_type="CONSULT",
            state="INITIATED",
            at=NOW,
            associated_dialog_id="16817292",
        )
    ]


def test_dialogs_post_agent_inside_callee_uses_the_agents_extension() -> None:
    """Two agent devices on the call: the agent's own participant is found by its extension."""
    [event] = read("dialogs_post_agent_inside_callee.xml")
    assert isinstance(event, DialogChanged)
    assert (event.call_type, event.state) == ("AGENT_INSIDE", "ALERTING")
    [caller_side] = read("dialogs_post_agent_inside_callee.xml", extension="1001002")
    assert isinstance(caller_side, DialogChanged)
    assert caller_side.state == "ACTIVE"


def test_dialogs_post_agent_inside_without_extension_falls_back_to_the_dialog_state() -> None:
    [event] = read("dialogs_post_agent_inside_callee.xml", extension=None)
    assert isinstance(event, DialogChanged)
    assert event.state == "ALERTING"  # the dialog's state: two agent devices, none known to be ours


def test_api_errors_refused() -> None:
    assert read("api_errors_refused.xml") == [
        FinesseRefused(
            agent_id=AGENT,
            requested_state="",
            error_type="Invalid State",
            message="CF_INVALID_AGENT_STATE_TRANSITION",
            at=NOW,
            request_id="cc-1001001-8",
        )
    ]


def test_media_chat_not_ready_only_when_asked() -> None:
    assert read("media_chat_not_ready.xml") == []
    assert read("media_chat_not_ready.xml", media=True) == [
        MediaStateChanged(agent_id=AGENT, mrd_id="5000", state="NOT_READY", reason_code_id="16", at=NOW)
    ]


def test_unknown_team_users_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert read("unknown_team_users.xml", agent_id=None) == []
        assert read("unknown_team_users.xml") == []
    assert "no agent for source" in caplog.text
    assert "unhandled payload <users>" in caplog.text


def test_unknown_payload_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert read("unknown_payload.xml") == []
    assert "unhandled payload <queue>" in caplog.text


def test_not_an_update_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    assert read("not_an_update.xml") == []
    assert "<apierrors> is not an <Update>" in caplog.text


def test_malformed_truncated_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    assert read("malformed_truncated.xml") == []
    assert "not well-formed" in caplog.text


def test_malformed_entity_expansion_is_refused_not_expanded(caplog: pytest.LogCaptureFixture) -> None:
    assert read("malformed_entity_expansion.xml") == []
    assert "DTDForbidden" in caplog.text or "EntitiesForbidden" in caplog.text


@pytest.mark.parametrize("garbage", [b"", b"\x00\xff", "<Update>\u2028".encode(), b"<?xml version='1.0'?>"])
def test_garbage_never_raises(garbage: bytes) -> None:
    assert read_update(garbage) == []


def test_reader_remembers_extensions_from_user_updates() -> None:
    """Before the agent's User update the dialog falls back to the dialog state; after it, the
    agent's own participant is used."""
    reader = UpdateReader(now=lambda: NOW)
    agent_inside = (FIXTURES / "dialogs_post_agent_inside_callee.xml").read_bytes()
    # the dialog fixture is seen by the callee 1001001; make the callee's User update come first
    [before] = reader.read(agent_inside, AGENT)
    assert isinstance(before, DialogChanged)
    reader.read((FIXTURES / "user_ready.xml").read_bytes(), AGENT)
    assert reader.extensions == {AGENT: AGENT}
    reader.remember("1001002", "1001002")
    [as_caller] = reader.read(agent_inside, "1001002")
    assert isinstance(as_caller, DialogChanged)
    assert as_caller.state == "ACTIVE"
