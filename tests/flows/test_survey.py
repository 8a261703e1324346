"""The post-chat survey: its `survey:` block in a flow (check-config), and the state machine's
answers read from a table (connector/flows/survey.py)."""

from __future__ import annotations

import pytest

from connector.config.loader import ConfigError, load_config
from connector.flows import survey as machine
from connector.flows.definition import Survey
from tests.flows.test_flow_config import TEMPLATES, write

FIVE = Survey(question="survey_score", retry="survey_score_retry", comment="survey_comment", thanks="survey_thanks")
CHOICES = Survey(question="survey_score", choices=("Bad", "OK", "Great"))


def test_a_survey_only_flow_loads_with_its_defaults(tmp_path) -> None:
    flow = {"name": "intake", "steps": [], "survey": {"question": "survey_score", "comment": "survey_comment"}}
    config = load_config(write(tmp_path, flows=[flow]), env={}, templates_dir=TEMPLATES)
    found = config.flow("intake")
    assert found is not None and found.survey == Survey(question="survey_score", comment="survey_comment")
    assert found.survey.timeout_seconds == 3600 and found.survey.points == 5


def test_check_config_names_survey_mistakes(tmp_path) -> None:
    flows = [
        {"name": "intake", "steps": []},
        {"name": "b", "steps": [], "survey": {"question": "no_such_template", "choices": ["Only"], "scale": 11}},
        {"name": "c", "steps": [], "survey": {"question": "survey_score", "thanks": "survey_nope"}},
        {"name": "d", "steps": [], "survey": {"question": "survey_score", "timeout_seconds": 1}},
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, flows=flows), env={}, templates_dir=TEMPLATES)
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "'steps': a flow needs steps, a survey, or both" in text
    assert "survey.scale" in text and "survey.timeout_seconds" in text
    assert "survey.choices" in text and "at least two (worst first)" in text
    assert "survey.thanks" in text and "no template 'survey_nope'" in text


@pytest.mark.parametrize(
    ("survey", "text", "payload", "expected"),
    [
        (FIVE, "4", None, (4, None)),
        (FIVE, " 5/5 ", None, (5, None)),
        (FIVE, "5!", None, (5, None)),
        (FIVE, "1.", None, (1, None)),
        (FIVE, "6", None, None),
        (FIVE, "0", None, None),
        (FIVE, "great", None, None),
        (FIVE, "4 stars", None, None),
        (FIVE, None, None, None),
        (CHOICES, "great", None, (3, "Great")),
        (CHOICES, "1", None, (1, "Bad")),
        (CHOICES, "whatever", "OK", (2, "OK")),
        (CHOICES, "4", None, None),
    ],
)
def test_what_is_a_score(survey, text, payload, expected) -> None:
    assert machine.score_of(survey, text, payload) == expected


@pytest.mark.parametrize(
    ("score", "points", "expected"),
    [(5, 5, True), (4, 5, True), (3, 5, False), (3, 3, True), (2, 3, False), (9, 10, True)],
)
def test_satisfied_is_the_top_two_points(score, points, expected) -> None:
    assert machine.satisfied(score, points) is expected


def test_the_machine_asks_once_again_then_passes_the_message_on() -> None:
    state, actions = machine.begin(FIVE, "csat")
    assert actions == [machine.Ask("score", "survey_score", (), "survey:score:0"), machine.StartTimer(1, 3600)]
    new, actions = machine.receive(FIVE, state, "meh", None)
    assert new is state and actions[-2:] == [
        machine.Ask("score", "survey_score_retry", (), "survey:score:1", retry=True),
        machine.StartTimer(2, 3600),
    ]
    new, actions = machine.receive(FIVE, state, "again meh", None)
    assert new is None and actions[-1] == machine.Ended("invalid", passed_on=True)


def test_a_score_then_the_comment_then_thanks() -> None:
    state, _ = machine.begin(FIVE, "csat")
    state, actions = machine.receive(FIVE, state, "3", None)
    assert state is not None and state.stage == "comment" and actions[0] == machine.Scored(3, None)
    assert actions[1] == machine.Ask("comment", "survey_comment", (), "survey:comment:0")
    assert machine.expire(state, 1) == (state, []), "the score's timer is stale"
    new, actions = machine.receive(FIVE, state, "  fine   thanks ", None)
    assert new is None and actions == [
        machine.Commented("fine thanks"),
        machine.Thanks("survey_thanks"),
        machine.Ended("answered"),
    ]


def test_the_current_timer_ends_it() -> None:
    state, _ = machine.begin(CHOICES, "csat")
    assert machine.expire(state, 1) == (None, [machine.Ended("timed_out")])
