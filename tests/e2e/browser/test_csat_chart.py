"""The overview's CSAT card in real Chromium: survey results written through the survey store are
drawn as the average-score chart (uPlot on a canvas) over a table with the same figures. The browser
runs in Los Angeles: the days are UTC days, and the hovered point must name the table's day, not the
local one (eight hours west of UTC, a day's start is the evening before)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from connector.store import surveys
from connector.store.surveys import SurveyRecord
from tests.e2e.browser.conftest import screenshot
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

DAY = 86400
NONE = "\u2013"
"""The table's dash for a day without answers."""
LINE = (23, 128, 61)
"""dashboard.js draws the average in COLORS[1], #17803d."""


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    """conftest's page, in a browser whose clock reads Los Angeles time."""
    context = browser.new_context(
        base_url=stack.connector_url, viewport={"width": 1280, "height": 800}, timezone_id="America/Los_Angeles"
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def answered(conversation: str, score: int, at: float) -> SurveyRecord:
    return SurveyRecord(
        conversation=conversation,
        thread=f"thread-{conversation}",
        flow="csat",
        integration="ECE",
        entry_point="Support",
        channel="whatsapp",
        asset="wa",
        agent="Alice",
        agent_id="1001",
        status="answered",
        points=5,
        asked_at=at - 30,
        score=score,
        answered_at=at,
    )


def line_pixels(page: Page) -> int:
    """Pixels of the chart's canvas in the line's colour: zero on a blank or axis-only canvas."""
    return int(
        page.evaluate(
            """([r, g, b]) => {
                const canvas = document.querySelector('#csat-chart canvas');
                const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                let found = 0;
                for (let i = 0; i < data.length; i += 4) {
                    if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40
                        && Math.abs(data[i + 2] - b) < 40 && data[i + 3] > 128) found++;
                }
                return found;
            }""",
            list(LINE),
        )
    )


def test_the_csat_card_draws_the_average_per_day_over_its_table(
    page: Page, log_in: Callable[[str], object], stack: Stack
) -> None:
    today = int(time.time() // DAY) * DAY
    noon = today + min(DAY / 2, max(1.0, time.time() - today - 1))  # today, never in the future
    for conversation, score, at in (
        ("c-1", 5, noon),
        ("c-2", 4, noon),
        ("c-3", 2, noon - 2 * DAY),
        ("c-4", 1, noon - 4 * DAY),
        ("c-5", 3, noon - 4 * DAY),
    ):
        surveys.save(stack.runtime.redis, answered(conversation, score, at), None)

    log_in("viewer")
    expect(page.locator("#csat")).to_contain_text("40.0 % satisfied, 5 answers (last 7 days)")
    expect(page.locator("#csat")).to_contain_text("average score 3.0")
    chart = page.locator("#csat-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("canvas")).to_have_count(1)
    assert line_pixels(page) > 50

    expected = {0: ["2", "4.5", "100.0 %"], 2: ["1", "2.0", "0.0 %"], 4: ["2", "2.0", "0.0 %"]}
    rows = page.locator("#csat-days tbody tr")
    expect(rows).to_have_count(7)
    for age in range(7):  # newest first
        row = rows.nth(age)
        expect(row.locator("th")).to_have_text(time.strftime("%Y-%m-%d", time.gmtime(today - age * DAY)))
        expect(row.locator("td")).to_have_text(expected.get(age, ["0", NONE, NONE]))

    # Hovering today's point (the chart's right end) names it as the table does.
    plot = chart.locator(".u-over")
    box = plot.bounding_box()
    assert box is not None
    plot.hover(position={"x": box["width"] - 2, "y": box["height"] / 2})
    values = chart.locator(".u-legend .u-series .u-value")
    expect(values.nth(0)).to_have_text(time.strftime("%Y-%m-%d", time.gmtime(today)))
    expect(values.nth(1)).to_have_text("4.5")
    screenshot(page, "overview-csat")

    # The chart follows the card's width when the window changes.
    width = "document.querySelector('#csat-chart canvas').getBoundingClientRect().width"
    before = page.evaluate(width)
    page.set_viewport_size({"width": 700, "height": 800})
    page.wait_for_function(
        f"""() => {{
            const host = document.querySelector('#csat-chart [data-chart="csat"]');
            return Math.abs({width} - Math.max(240, host.clientWidth)) < 2;
        }}"""
    )
    assert abs(page.evaluate(width) - before) > 20
    assert line_pixels(page) > 50
