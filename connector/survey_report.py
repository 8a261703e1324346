"""Survey results as the operators read them: the /metrics families and the overview's CSAT card
(connector/dashboard.py `register_csat`), both from store/surveys.py."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis import Redis

from connector.dashboard import Csat
from connector.store import surveys

CSAT_DAYS = 7
"""The overview's CSAT covers this many days, today included."""


def survey_metrics(redis: Redis) -> Iterator[Metric]:
    """Answered surveys and their mean score per entry point, since the first survey (the totals
    move once per answered survey, in the drain's commit)."""
    labels = ["integration", "entry_point"]
    responses = CounterMetricFamily(
        "connector_survey_responses", "Post-chat surveys answered with a score.", labels=labels
    )
    score_sum = CounterMetricFamily(
        "connector_survey_score_sum", "Sum of the scores of answered post-chat surveys.", labels=labels
    )
    average = GaugeMetricFamily(
        "connector_survey_average_score", "Mean post-chat survey score since the first survey.", labels=labels
    )
    for (integration, entry_point), (count, total) in sorted(surveys.totals(redis).items()):
        responses.add_metric([integration, entry_point], count)
        score_sum.add_metric([integration, entry_point], total)
        if count:
            average.add_metric([integration, entry_point], total / count)
    yield from (responses, score_sum, average)


def csat(redis: Redis) -> Csat | None:
    """The last CSAT_DAYS days' answered surveys; None (not measured) while there are none."""
    found = surveys.summary(redis, CSAT_DAYS)
    if not found.responses or found.satisfied_percent is None or found.average is None:
        return None
    return Csat(
        score=found.satisfied_percent,
        responses=found.responses,
        period=f"last {CSAT_DAYS} days",
        average=found.average,
        days=[(d.day, d.responses, d.average, d.satisfied_percent) for d in found.days],
    )
