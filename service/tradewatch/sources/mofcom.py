"""The `mofcom` kind: the `html` kind preset for MOFCOM sites (www, english, xkzj, exportcontrol).

No MOFCOM list page could be recorded, so the list selectors below are defaults a
user corrects in the config (`select: {item: ...}` merges over them) when the
ministry changes its site; the detail-page reading is built on real recorded pages
and knows their traps: titles filled by JavaScript from `var title = '…'`, the
【发布文号】/【发文日期】 lines split across spans, disclaimers inside the article box,
attachments behind download gateways. Dates are Asia/Shanghai unless configured.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from urllib.parse import parse_qs, urljoin, urlsplit

from pydantic import model_validator
from selectolax.lexbor import LexborHTMLParser

from tradewatch.config import SourceSpec, TimezoneName
from tradewatch.models import Document
from tradewatch.sources._text import SHANGHAI, find_date
from tradewatch.sources.html import Detail, HtmlOptions, HtmlSource, ListItem

__all__ = ["MOFCOM_SELECTORS", "MofcomOptions", "MofcomSource"]

MOFCOM_SELECTORS: dict[str, Any] = {
    # list pages (hand-made guesses, see tests/data/INDEX.md): first alternative that matches wins
    "item": "ul.txtList_01 li || ul.u-list li || div.list-con ul li || div.m-list ul li || ul.list li",
    "title": "a@title || a",
    "link": "a@href",
    "date": None,  # the first date in the entry's text
    # detail pages (from the recorded pages in ../shared/fixtures/mofcom)
    "body": "div.u-art-box div.bd || div#zoom || div.art-con || div.gsj_htmlcon_bot || div.my_doccontent"
    " || div.TRS_Editor || div.article-content || div#article",
    "exclude": ["div.u-disclaimer-box", "div.gu-download", "div.article-tool", "section.article-tool"],
}
_VAR = re.compile(r"""var\s+(\w+)\s*=\s*'([^'\n]*)'""")
_LABEL = re.compile(r"【(发布单位|发布文号|发文日期|发布日期|成文日期|施行日期)】\s*([^\n【]+)")
_ANNOUNCEMENT = re.compile(
    r"(?:[\u4e00-\u9fff]{0,16}\s?){0,3}(?:公告|令|函|通知)\s*[〔\[（(]?\s*\d{4}\s*[〕\]）)]?\s*年?\s*第?\s*[\d零一二三四五六七八九十百]+\s*号"
    r"|[\u4e00-\u9fff]{1,12}〔\d{4}〕\d+号"
    r"|(?:Announcement|Order|Decree)\s+(?:No\.\s*)?\d+\s+of\s+\d{4}|(?:Announcement|Order)\s+No\.\s*\d+",
)
_FILE = re.compile(r"\.(pdf|docx?|xlsx?|zip|rar|wps|ofd|et)(?:$|[?#])|download", re.I)


class MofcomOptions(HtmlOptions):
    """`html` options with MOFCOM defaults; `select` keys given in the config replace only themselves."""

    timezone: TimezoneName = "Asia/Shanghai"

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = data.get("select") or {}
            if isinstance(given, dict):
                data = {**data, "select": {**MOFCOM_SELECTORS, **given}}
        return data


def _meta(tree: LexborHTMLParser, name: str) -> str:
    node = tree.css_first(f'meta[name="{name}"]')
    return (node.attributes.get("content") or "").strip() if node is not None else ""


def _text_of(tree: LexborHTMLParser, css: str) -> str:
    node = tree.css_first(css)
    return " ".join(node.text(deep=True).split()) if node is not None else ""


def announcement_number(text: str) -> str | None:
    """The notice's number: the 【发布文号】 line, else the first number-like phrase near the top."""
    for label, value in _LABEL.findall(text):
        if label == "发布文号" and value.strip():
            return " ".join(value.split())
    m = _ANNOUNCEMENT.search(text[:1500])
    return " ".join(m.group(0).split()) if m else None


def attachments(tree: LexborHTMLParser, base: str) -> list[dict[str, str]]:
    """File links (PDF, Word, Excel, download gateways) with readable names."""
    found: list[dict[str, str]] = []
    for a in tree.css("a[href]"):
        href = (a.attributes.get("href") or "").strip()
        if not href or href.startswith(("javascript:", "#")) or not _FILE.search(href):
            continue
        url = urljoin(base, href)
        query = parse_qs(urlsplit(url).query)
        name = (query.get("fileName") or query.get("filename") or [""])[0] or " ".join(a.text().split())
        if url not in {f["url"] for f in found}:
            found.append({"name": name or url.rsplit("/", 1)[-1], "url": url})
    return found


class MofcomSource(HtmlSource):
    """MOFCOM list pages → detail pages → documents with announcement numbers and Shanghai dates."""

    kind: ClassVar[str] = "mofcom"
    Options: ClassVar[type[SourceSpec]] = MofcomOptions

    def read_detail(self, tree: LexborHTMLParser, url: str) -> Detail:
        variables = {k: v for s in tree.css("script") for k, v in _VAR.findall(s.text(deep=True) or "")}
        title = (
            variables.get("title")
            or _meta(tree, "ArticleTitle")
            or _text_of(tree, "#artitle")
            or _text_of(tree, "h2.title_con")
            or _text_of(tree, "h2.xxgk_title")
            or _text_of(tree, "title")
        )
        stamps = (
            variables.get("publishTime"),
            _meta(tree, "PubDate"),
            _text_of(tree, "div.docreltime"),
            _text_of(tree, "div.at-left"),
        )
        times = [t for t in (find_date(s, self.tz) for s in stamps if s) if t is not None]
        files = attachments(tree, url)
        detail = super().read_detail(tree, url)
        detail.title = detail.title or title
        detail.published_at = detail.published_at or (times[0] if times else None)
        detail.times = times
        labels = {k: " ".join(v.split()) for k, v in _LABEL.findall(detail.text)}
        number = announcement_number(detail.text)
        if number:
            detail.extra["announcement"] = number
            # only the header line is surely the page's own number (the `announcement` fact
            # trusts it); a number near the top may be one the notice suspends or cites
            detail.extra["announcement_from"] = "header" if labels.get("发布文号") else "text"
        if labels.get("发布单位"):
            detail.extra["issuer"] = labels["发布单位"]
        issued = labels.get("发文日期") or labels.get("成文日期")
        issued_at = find_date(issued, SHANGHAI) if issued else None
        if issued_at is not None:
            detail.extra["issued_on"] = issued_at.date().isoformat()
        if variables.get("source") or _meta(tree, "ContentSource"):
            detail.extra["publisher"] = variables.get("source") or _meta(tree, "ContentSource")
        if files:
            detail.extra["attachments"] = files
        return detail

    def document(self, item: ListItem, detail: Detail | None) -> Document:
        doc = super().document(item, detail)
        listed = item.published_at
        times = [t for t in (detail.times if detail else []) if listed is None or t.date() == listed.date()]
        if times:
            doc.published_at = times[0]  # the detail page's time of day on the list's day
        if (
            detail is not None
            and detail.title
            and len(detail.title) > len(doc.title)
            and (not doc.title or detail.title.startswith(doc.title.rstrip(".…")))
        ):
            doc.title = detail.title  # lists cut long titles
        return doc
