"""Post-chat survey results in Redis: one record per conversation, an index by time, and totals
per entry point.

Only the drain writes a record, under the thread's lease (relay/survey_turn.py), so reading the old
record and writing the new one cannot race. A record is written whole (SET) and its totals move in
the same MULTI, only the first time it has a score: an item repeated after a crash writes the same
record again and counts nothing twice. Records are kept like the threads they belong to (no expiry).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from connector.flows.survey import satisfied
from connector.store import keys, replies

_SEP = "\x1f"
READ_BATCH = 500


@dataclass
class SurveyRecord:
    conversation: str
    thread: str
    flow: str
    integration: str | None
    entry_point: str | None
    channel: str
    asset: str
    agent: str | None
    """The agent's name as the backend gave it (else their id)."""
    agent_id: str | None
    status: str
    """answered | timed_out | invalid | left (flows/survey.py Status); `asked` while it waits."""
    points: int
    """The scale's top score (5 for 1-5; the number of choices)."""
    asked_at: float
    score: int | None = None
    answer: str | None = None
    """With choices: the one picked."""
    comment: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None

    @property
    def at(self) -> float:
        """When it counts for date filters: the answer, else its end, else when asked."""
        return self.answered_at or self.ended_at or self.asked_at

    @property
    def satisfied(self) -> bool:
        return self.score is not None and satisfied(self.score, self.points)


def get(redis: Redis, conversation: str) -> SurveyRecord | None:
    raw = replies.bytes_or_none(redis.get(keys.survey(conversation)))
    return _parse(raw) if raw else None


def save(redis: Redis, record: SurveyRecord, previous: SurveyRecord | None) -> None:
    """Write `record` (its previous version, read under the same lease, decides the totals)."""
    pipe = redis.pipeline(transaction=True)
    pipe.set(keys.survey(record.conversation), json.dumps(asdict(record), separators=(",", ":")))
    pipe.zadd(keys.surveys_by_time(), {record.conversation: record.at})
    if record.score is not None and (previous is None or previous.score is None):
        where = f"{record.integration or ''}{_SEP}{record.entry_point or ''}{_SEP}"
        pipe.hincrby(keys.survey_totals(), f"{where}responses", 1)
        pipe.hincrby(keys.survey_totals(), f"{where}score_sum", record.score)
    replies.execute(pipe)


def between(
    redis: Redis, since: float | None, until: float | None, *, newest_first: bool = True
) -> Iterator[SurveyRecord]:
    """The records whose time (`SurveyRecord.at`) is in [since, until], read in batches."""
    low, high = ("-inf" if since is None else since), ("+inf" if until is None else until)
    if newest_first:
        ids = replies.bytes_list(redis.zrevrangebyscore(keys.surveys_by_time(), high, low))
    else:
        ids = replies.bytes_list(redis.zrangebyscore(keys.surveys_by_time(), low, high))
    for start in range(0, len(ids), READ_BATCH):
        batch = [keys.survey(i.decode()) for i in ids[start : start + READ_BATCH]]
        for raw in replies.bytes_or_none_list(redis.mget(batch)):
            if raw:
                yield _parse(raw)


def totals(redis: Redis) -> dict[tuple[str, str], tuple[int, int]]:
    """(integration, entry point) → (responses, sum of scores), since the first survey."""
    found: dict[tuple[str, str], list[int]] = {}
    for field, value in replies.bytes_hash(redis.hgetall(keys.survey_totals())).items():
        integration, entry_point, what = field.decode().split(_SEP)
        counts = found.setdefault((integration, entry_point), [0, 0])
        counts[0 if what == "responses" else 1] = int(value)
    return {where: (counts[0], counts[1]) for where, counts in found.items()}


@dataclass(frozen=True)
class Day:
    """One day's answered surveys (UTC)."""

    day: int
    """Unix seconds of the day's start."""
    responses: int
    average: float | None
    satisfied_percent: float | None


@dataclass(frozen=True)
class Summary:
    responses: int
    average: float | None
    satisfied_percent: float | None
    days: list[Day]


def summary(redis: Redis, days: int, now: float | None = None) -> Summary:
    """The answered surveys of the last `days` days (today included), in all and per day."""
    now = time.time() if now is None else now
    today = int(now // 86400) * 86400
    first = today - (days - 1) * 86400
    per_day: dict[int, list[SurveyRecord]] = {first + i * 86400: [] for i in range(days)}
    for record in between(redis, first, now, newest_first=False):
        if record.score is not None:
            per_day.setdefault(int(record.at // 86400) * 86400, []).append(record)
    scored = [r for records in per_day.values() for r in records]
    return Summary(
        len(scored),
        _average(scored),
        _satisfied(scored),
        [Day(day, len(found), _average(found), _satisfied(found)) for day, found in sorted(per_day.items())],
    )


def _average(records: list[SurveyRecord]) -> float | None:
    return sum(r.score or 0 for r in records) / len(records) if records else None


def _satisfied(records: list[SurveyRecord]) -> float | None:
    return 100.0 * sum(r.satisfied for r in records) / len(records) if records else None


def _parse(raw: bytes | str) -> SurveyRecord:
    data: dict[str, Any] = json.loads(raw)
    return SurveyRecord(**data)
