"""Slack notifier against FakeSlack: blocks, routing, threads, idempotency, retries, escaping."""

from __future__ import annotations

import pytest
import structlog

from tests.fakeslack import FakeSlack
from tests.notify.alerts import HOSTILE, make_alert
from tradewatch.config import SlackSettings
from tradewatch.errors import DeliveryError, TakenOver
from tradewatch.models import SourceRef
from tradewatch.notify import NOTIFIERS
from tradewatch.notify.guard import SEND_GUARD
from tradewatch.notify.render import fact_items
from tradewatch.notify.slack import SlackNotifier


def _settings(slack: FakeSlack, **over: object) -> SlackSettings:
    data: dict[str, object] = {
        "token": slack.token,
        "base_url": slack.base_url,
        "routes": {"default": "#trade-alerts", "critical": "#supply-critical", "truce": "#truce-watch"},
    }
    data.update(over)
    return SlackSettings.model_validate(data)


def _notifier(slack: FakeSlack, **over: object) -> SlackNotifier:
    return SlackNotifier(_settings(slack, **over), backoff=0)


async def test_alert_carries_contract_fields(slack: FakeSlack) -> None:
    """A new alert shows severity, rule title, linked doc title, source, published time and facts."""
    notifier = NOTIFIERS["slack"](_settings(slack))
    receipt = await notifier.send(make_alert())
    await notifier.aclose()
    assert receipt is not None
    [msg] = slack.messages
    assert receipt == {"channel": msg.channel, "ts": msg.ts}
    text = msg.all_text()
    assert "MOFCOM export controls on rare-earth items" in text
    assert "CRITICAL" in text
    assert "<https://www.mofcom.gov.cn/zwgk/zcfb/art/2025/art_18.html|商务部 海关总署公告2025年第18号" in text
    assert "mofcom-announcements" in text
    assert "<!date^1743757200^" in text
    assert "*Effective date*\n2025-04-04" in text
    assert "*Announcement*\nNo. 18 of 2025" in text
    assert "samarium, gadolinium, terbium, dysprosium" in text
    assert msg.metadata == {
        "event_type": "tradewatch_alert",
        "event_payload": {"alert_id": "alert-1", "event_id": "event-1", "kind": "new"},
    }
    assert msg.text.startswith("[CRITICAL] MOFCOM export controls")


async def test_chinese_document_gets_english_lead_line(slack: FakeSlack) -> None:
    """A Chinese title is preceded by an English line built from the facts, above the original."""
    await _notifier(slack).send(make_alert())
    section = slack.messages[0].blocks[1]["text"]["text"]
    lead, title = section.split("\n")[:2]
    assert lead.startswith("*MOFCOM Announcement No. 18 of 2025 — samarium, gadolinium")
    assert "effective 2025-04-04" in lead
    assert "商务部" in title


async def test_rule_lead_line_wins(slack: FakeSlack) -> None:
    """The rules engine's lead line, when set, is used as is (escaped)."""
    await _notifier(slack).send(make_alert(lead="Export controls on Sm & Dy <now>"))
    assert "*Export controls on Sm &amp; Dy &lt;now&gt;*" in slack.messages[0].all_text()


async def test_routes_by_notify_severity_tag_and_default(slack: FakeSlack) -> None:
    """`slack:ROUTE` beats severity, severity beats tag, tag beats default."""
    n = _notifier(slack)
    await n.send(make_alert(id="a", notify=["slack:truce"]))
    await n.send(make_alert(id="b", severity="critical"))
    await n.send(make_alert(id="c", severity="warning", tags=["truce"]))
    await n.send(make_alert(id="d", severity="info", tags=["other"]))
    by_id = {m.alert_id: m.channel for m in slack.messages}
    assert by_id == {
        "a": slack.channels["truce-watch"],
        "b": slack.channels["supply-critical"],
        "c": slack.channels["truce-watch"],
        "d": slack.channels["trade-alerts"],
    }


async def test_unknown_route_is_permanent(slack: FakeSlack) -> None:
    """A `slack:ROUTE` the config lacks fails permanently instead of guessing a channel."""
    with pytest.raises(DeliveryError) as info:
        await _notifier(slack).send(make_alert(notify=["slack:nope"]))
    assert info.value.permanent
    assert slack.messages == []


async def test_second_source_lands_in_thread(slack: FakeSlack) -> None:
    """An `also` alert passed the parent receipt is a reply in the first alert's thread."""
    n = _notifier(slack)
    parent = await n.send(make_alert())
    also = make_alert(
        id="alert-2",
        kind="also",
        source="reuters-china",
        url="https://reuters.example/x",
        title="China curbs rare earth exports",
        lang="en",
        lead="",
        severity="warning",
        sources=[SourceRef(source="reuters-china", url="https://reuters.example/x")],
    )
    reply = await n.send(also, thread=parent)
    assert reply["channel"] == parent["channel"]
    [child] = slack.thread(parent["ts"])
    assert child.ts == reply["ts"]
    assert "Also reported" in child.all_text()
    assert len(slack.top_level()) == 1
    assert "reply_broadcast" not in child.raw


async def test_reply_that_raises_the_event_is_also_sent_to_the_channel(slack: FakeSlack) -> None:
    """The official notice raising a news story's event to critical is a thread reply broadcast
    to the channel, so nobody has to open the thread to see it."""
    n = _notifier(slack)
    parent = await n.send(make_alert(severity="warning"))
    await n.send(make_alert(id="alert-2", kind="also", severity="critical", raises=True), thread=parent)
    [child] = slack.thread(parent["ts"])
    assert child.raw.get("reply_broadcast") is True


async def test_redelivery_finds_earlier_post(slack: FakeSlack) -> None:
    """A redelivery returns the receipt of the earlier post found by metadata and posts nothing."""
    first = await _notifier(slack).send(make_alert())
    fresh = _notifier(slack)  # a new worker: no in-memory channel cache
    again = await fresh.send(make_alert(), redelivery=True)
    assert again == first
    assert len(slack.messages) == 1
    assert slack.calls_to("conversations.history")[0].args["include_all_metadata"] in ("1", "true", True)


async def test_redelivery_of_thread_reply_checks_replies(slack: FakeSlack) -> None:
    """A redelivered reply is found in the thread's replies, not posted twice."""
    n = _notifier(slack)
    parent = await n.send(make_alert())
    reply = make_alert(id="alert-2", kind="update")
    first = await n.send(reply, thread=parent)
    again = await _notifier(slack).send(reply, thread=parent, redelivery=True)
    assert again == first
    assert len(slack.thread(parent["ts"])) == 1


async def test_redelivery_posts_when_not_found(slack: FakeSlack) -> None:
    """A redelivery of an alert that never reached Slack posts it."""
    await _notifier(slack).send(make_alert(id="other"))
    receipt = await _notifier(slack).send(make_alert(), redelivery=True)
    assert [m.alert_id for m in slack.messages] == ["other", "alert-1"]
    assert receipt["ts"] == slack.messages[-1].ts


async def test_redelivery_without_history_scope_posts(slack: FakeSlack) -> None:
    """A bot token without `channels:history` cannot look: the redelivery posts (a possible double
    is better than a lost alert) and says so in the log."""
    first = await _notifier(slack).send(make_alert())
    slack.fail("conversations.history", status=200, error="missing_scope")
    with structlog.testing.capture_logs() as logs:
        again = await _notifier(slack).send(make_alert(), redelivery=True)
    assert again != first
    assert [m.alert_id for m in slack.messages] == ["alert-1", "alert-1"]
    assert [e["event"] for e in logs if e["event"] == "slack_history_unavailable"] == [
        "slack_history_unavailable"
    ]


async def test_history_check_zero_posts_without_looking(slack: FakeSlack) -> None:
    """`history_check: 0` turns the redelivery check off: no history call, the alert is posted."""
    await _notifier(slack).send(make_alert())
    await _notifier(slack, history_check=0).send(make_alert(), redelivery=True)
    assert slack.calls_to("conversations.history") == []
    assert len(slack.messages) == 2


async def test_channel_names_resolve_across_list_pages(slack: FakeSlack) -> None:
    """A workspace with many channels answers conversations.list in pages: the routed channel is
    found on a later page, so a redelivery still checks the right history."""
    for n in range(5):
        slack.channels[f"other-{n}"] = f"C0OTHER{n}"
    slack.list_page_size = 2
    first = await _notifier(slack).send(make_alert())
    again = await _notifier(slack).send(make_alert(), redelivery=True)
    assert again == first
    assert len(slack.calls_to("conversations.list")) >= 2
    assert len(slack.messages) == 1


async def test_rate_limit_retried_after_retry_after(slack: FakeSlack) -> None:
    """A 429 with a short Retry-After is retried in-process by slack-sdk's handler and then posts."""
    slack.fail("chat.postMessage", status=429, retry_after=0, times=1)
    receipt = await _notifier(slack).send(make_alert())
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]
    assert receipt["ts"] == slack.messages[0].ts


async def test_no_post_after_a_wait_when_another_worker_took_the_alert(slack: FakeSlack) -> None:
    """A 429 waited out in-process: if the outbox entry went to another worker meanwhile (this
    one stalled past claim_idle), this one does not post it too."""
    slack.fail("chat.postMessage", status=429, retry_after=0, times=1)
    checks: list[str] = []

    async def taken() -> bool:
        checks.append("asked")
        return False

    token = SEND_GUARD.set(taken)
    try:
        with pytest.raises(TakenOver):
            await _notifier(slack).send(make_alert())
    finally:
        SEND_GUARD.reset(token)
    assert (slack.messages, checks) == ([], ["asked"])


async def test_long_rate_limit_surfaces_retry_after(slack: FakeSlack) -> None:
    """A 429 asking for a long wait becomes a transient DeliveryError carrying retry_after."""
    slack.fail("chat.postMessage", status=429, retry_after=30, times=1)
    with pytest.raises(DeliveryError) as info:
        await _notifier(slack).send(make_alert())
    assert not info.value.permanent
    assert info.value.retry_after == 30
    assert slack.messages == []


async def test_server_error_on_post_is_transient_and_not_retried_blindly(slack: FakeSlack) -> None:
    """A 500 may come after Slack posted: the post is not re-sent in-process but left to the
    outbox, whose retry (redelivery) finds the earlier post instead of posting twice."""
    slack.fail("chat.postMessage", status=500, times=1, after_post=True)
    notifier = _notifier(slack)
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_alert(id="x"))
    assert not info.value.permanent
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500]
    receipt = await notifier.send(make_alert(id="x"), redelivery=True)
    assert [m.alert_id for m in slack.messages] == ["x"]
    assert receipt["ts"] == slack.messages[0].ts


async def test_reads_are_retried_on_server_errors(slack: FakeSlack) -> None:
    """A history read is safe to repeat, so slack-sdk retries its 500s in-process."""
    notifier = _notifier(slack)
    await notifier.send(make_alert(id="x"))
    slack.fail("conversations.history", status=500, times=1)
    receipt = await notifier.send(make_alert(id="x"), redelivery=True)
    assert [c.status for c in slack.calls_to("conversations.history")] == [500, 200]
    assert len(slack.messages) == 1
    assert receipt["ts"] == slack.messages[0].ts


async def test_bad_token_is_permanent(slack: FakeSlack) -> None:
    """invalid_auth cannot be fixed by retrying."""
    notifier = SlackNotifier(_settings(slack, token="xoxb-wrong"))
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_alert())
    assert info.value.permanent


async def test_hostile_title_is_escaped(slack: FakeSlack) -> None:
    """`<!channel>`, crafted links and `&amp;` in fetched text render as text in every mrkdwn field."""
    hostile = make_alert(
        title=HOSTILE,
        source="evil<!here>",
        lead=HOSTILE,
        summary=HOSTILE,
        url="https://ok.example/a|b>c",
        facts={"items": [HOSTILE]},
        sources=[SourceRef(source="x<!everyone>", url="javascript:alert(1)", title=HOSTILE)],
    )
    await _notifier(slack).send(hostile)
    msg = slack.messages[0]
    mrkdwn = msg.text + "\n" + "\n".join(_texts(msg.blocks, "mrkdwn"))
    for ping in ("<!channel>", "<!here>", "<!everyone>"):
        assert ping not in mrkdwn
    assert "<https://evil.example" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn
    assert "&amp;amp;" in mrkdwn  # a literal "&amp;" in the title stays literal
    assert "<javascript" not in mrkdwn
    assert "<https://ok.example/a%7Cb%3Ec|" in mrkdwn
    # every remaining `<` opens one of our own links or date tokens
    for piece in mrkdwn.split("<")[1:]:
        assert piece.startswith(("https://ok.example", "https://www.", "!date^")), piece


async def test_plain_text_is_verbatim(slack: FakeSlack) -> None:
    """The header is plain_text, so a reminder title keeps its characters unescaped."""
    await _notifier(slack).send(make_alert(kind="reminder", title="Truce <ends> & more", lang="en"))
    header = slack.messages[0].blocks[0]["text"]
    assert header == {"type": "plain_text", "text": "Reminder: Truce <ends> & more", "emoji": True}


async def test_long_content_within_block_limits(slack: FakeSlack) -> None:
    """Huge titles, many facts and many sources are cut to Slack's limits (FakeSlack enforces them)."""
    facts = {f"fact_{i}": "x" * 5000 for i in range(30)}
    sources = [SourceRef(source=f"s{i}", url=f"https://s{i}.example/" + "y" * 300) for i in range(60)]
    big = make_alert(rule_title="R" * 400, title="&" * 5000, facts=facts, sources=sources, summary="z" * 9000)
    await _notifier(slack).send(big)
    assert len(slack.messages) == 1


async def test_links_stay_whole_when_text_is_cut(slack: FakeSlack) -> None:
    """A huge title and URL, and many long-URL sources: every `<` in the message is closed by a
    `>`, so Slack shows links, not raw markup (a cut at 3,000 characters fell inside a link)."""
    sources = [
        SourceRef(source=f"s{i}", url=f"https://s{i}.example/" + "y" * 900, title="t" * 300) for i in range(9)
    ]
    big = make_alert(
        title="T" * 5000, url="https://ok.example/" + "u" * 2600, lead="L" * 900, sources=sources
    )
    await _notifier(slack).send(big)
    for text in _texts(slack.messages[0].blocks, "mrkdwn"):
        assert text.count("<") == text.count(">"), text[:200]
        for piece in text.split("<")[1:]:
            assert "|" in piece.split(">")[0] or piece.startswith("!date^")
    also = next(t for t in _texts(slack.messages[0].blocks, "mrkdwn") if t.startswith("Also reported by"))
    assert also.endswith("more")


def test_fact_labels_read_as_words() -> None:
    """HS codes and dates have their own labels (not "Hs codes"); a confirmation says by whom."""
    assert fact_items({"hs_codes": ["2805.30"], "dates": ["2025-11-10"], "confirmation": True}) == [
        ("Confirmation", "by an official source"),
        ("Dates", "2025-11-10"),
        ("HS codes", "2805.30"),
    ]


async def test_incoming_webhook_mode(slack: FakeSlack) -> None:
    """With only webhook_url set, the alert is posted to the incoming webhook."""
    notifier = SlackNotifier(SlackSettings(webhook_url=slack.webhook_url))
    receipt = await notifier.send(make_alert())
    assert receipt == {"channel": "webhook", "ts": ""}
    assert "MOFCOM export controls" in slack.messages[0].all_text()


async def test_incoming_webhook_errors(slack: FakeSlack) -> None:
    """A removed webhook (404) is permanent: the alert is parked, not retried for hours; a long
    rate limit hands the outbox Slack's Retry-After; a 500 is transient."""
    notifier = SlackNotifier(SlackSettings(webhook_url=slack.webhook_url), retries=0)
    slack.fail("webhook", status=404, error="no_service")
    with pytest.raises(DeliveryError) as gone:
        await notifier.send(make_alert())
    assert gone.value.permanent
    slack.fail("webhook", status=429, retry_after=120)
    with pytest.raises(DeliveryError) as limited:
        await notifier.send(make_alert())
    assert (limited.value.permanent, limited.value.retry_after) == (False, 120)
    slack.fail("webhook", status=500)
    with pytest.raises(DeliveryError) as down:
        await notifier.send(make_alert())
    assert not down.value.permanent
    assert slack.messages == []
    assert await notifier.send(make_alert()) == {"channel": "webhook", "ts": ""}


def _texts(node: object, kind: str) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == kind and isinstance(node.get("text"), str):
            out.append(node["text"])
        for v in node.values():
            out.extend(_texts(v, kind))
    elif isinstance(node, list):
        for v in node:
            out.extend(_texts(v, kind))
    return out
