"""The 30-day timeline's counts and geometry, and the page's small text helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tradewatch.web.page import _relative, safe_url
from tradewatch.web.timeline import DAYS, MAX_TAGS, build_timeline

TODAY = date(2026, 12, 1)


def _at(days_ago: int, hour: int = 12) -> datetime:
    return datetime(TODAY.year, TODAY.month, TODAY.day, hour, tzinfo=UTC) - timedelta(days=days_ago)


def test_counts_alerts_per_tag_and_day_within_30_days() -> None:
    """Each tag gets a row of 30 bars; alerts outside the window are left out; busiest tag first."""
    alerts = [
        (_at(0), ["tariff-change"]),
        (_at(0), ["tariff-change", "truce"]),
        (_at(29), ["truce"]),
        (_at(30), ["truce"]),
        (_at(-1), ["truce"]),
        (_at(3), []),
    ]
    timeline = build_timeline(alerts, today=TODAY)
    rows = {row.tag: row for row in timeline.rows}
    assert [row.tag for row in timeline.rows] == ["tariff-change", "truce", "untagged"]
    assert rows["tariff-change"].total == 2
    assert rows["truce"].total == 2
    assert all(len(row.bars) == DAYS for row in timeline.rows)
    assert rows["tariff-change"].bars[-1].count == 2
    assert rows["truce"].bars[0].day == TODAY - timedelta(days=29)
    assert rows["truce"].bars[0].count == 1
    assert timeline.peak == 2


def test_bar_heights_scale_to_the_busiest_day_and_stay_in_their_row() -> None:
    """The busiest day fills its row; a single alert still shows; no bar leaves its row."""
    alerts = [(_at(1), ["a"])] * 10 + [(_at(2), ["b"])]
    timeline = build_timeline(alerts, today=TODAY)
    for row in timeline.rows:
        for bar in row.bars:
            assert row.y <= bar.y
            assert bar.y + bar.height <= row.y + timeline.row_height
    heights = {row.tag: max(b.height for b in row.bars) for row in timeline.rows}
    assert heights["a"] > heights["b"] >= 2


def test_many_tags_fold_into_other() -> None:
    """More tags than fit are summed into an `other` row, so the chart stays glanceable."""
    alerts = [(_at(1), [f"tag-{i:02d}"]) for i in range(MAX_TAGS + 4)]
    timeline = build_timeline(alerts, today=TODAY)
    assert len(timeline.rows) == MAX_TAGS
    assert timeline.rows[-1].tag == "other"
    assert timeline.rows[-1].total == 5


def test_no_alerts_is_an_empty_timeline() -> None:
    """Without alerts the timeline is empty (the page then says so in words)."""
    assert build_timeline([], today=TODAY).empty


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://www.mofcom.gov.cn/a.html", True),
        ("http://example.com/x?a=1&b=2", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("data:text/html,<b>x</b>", False),
        ("//evil.example/x", False),
        ("/relative", False),
        ("", False),
        ("http://[::1", False),
    ],
)
def test_safe_url_keeps_only_absolute_http_links(url: str, kept: bool) -> None:
    """Only absolute http(s) URLs become links; anything else is shown as text or dropped."""
    assert safe_url(url) == (url.strip() if kept else "")


def test_relative_times_read_at_a_glance() -> None:
    """Times are `5m ago` / `in 3d` / `now` / `never`."""
    now = _at(0)
    assert _relative(now - timedelta(minutes=5), now) == "5m ago"
    assert _relative(now + timedelta(days=3, hours=2), now) == "in 3d"
    assert _relative(now, now) == "now"
    assert _relative(None, now) == "never"
