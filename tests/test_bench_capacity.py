"""bench/capacity.py's verdicts and figures from given runs (the runs themselves: `CAPACITY_QUICK=1
python -m bench capacity`)."""

from __future__ import annotations

from bench.capacity import Delivery, Step, report
from bench.cpu import CpuUse
from bench.loadgen import Result


def run(p99_ms: float, statuses: dict[int, int] | None = None, errors: int = 0) -> Result:
    return Result(latencies_ms=[1.0] * 98 + [p99_ms] * 2, statuses=statuses or {200: 100}, errors=errors, seconds=1.0)


def delivered(accepted: int = 1000, seconds: float | None = 2.0, redis_cpu: float = 0.5) -> Delivery:
    return Delivery(1000, accepted, seconds, redis_cpu, CpuUse({"web": 1.0, "worker": 2.0}), 0)


def test_a_step_passes_only_under_the_p99_limit_with_every_answer_a_200():
    assert Step(100, run(49.0), CpuUse()).passed
    assert not Step(100, run(51.0), CpuUse()).passed
    assert not Step(100, run(5.0, {200: 99, 503: 1}), CpuUse()).passed
    assert not Step(100, run(5.0, errors=1), CpuUse()).passed


def test_the_web_figure_is_the_last_rate_that_passed():
    steps = [Step(100, run(5), CpuUse()), Step(120, run(90), CpuUse()), Step(120, run(6), CpuUse())]
    steps += [Step(150, run(80), CpuUse()), Step(150, run(70), CpuUse())]
    text = report(steps, delivered())
    assert "| messages/s one web process acknowledges (ack p99 ≤ 50 ms, no error) | 120 |" in text


def test_a_ramp_that_never_failed_says_the_figure_is_a_floor():
    text = report([Step(100, run(5), CpuUse())], delivered())
    assert "| 100 or more (the last step still passed) |" in text


def test_worker_rate_and_redis_cpu_per_thousand_messages_per_second():
    text = report([Step(100, run(5), CpuUse())], delivered(accepted=1000, seconds=2.0, redis_cpu=0.5))
    assert "| messages/s one worker delivers to ECE (answering at once) | 500 |" in text
    assert "| Redis CPU seconds per second at 1,000 messages/s (intake + delivery) | 0.50 |" in text
    assert "not drained within" in report([Step(100, run(5), CpuUse())], delivered(seconds=None))
