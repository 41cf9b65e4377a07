"""The `truthsocial` kind: posts of one account, from the Mastodon-compatible API or a mirror's feed.

With `account` (id) or `handle`, `url` is the instance (https://truthsocial.com) and
the statuses API is polled; without them `url` is a mirror's RSS feed (such as
trumpstruth.org/feed), read like the `rss` kind. Either way re-posts ("RT …") and
replies follow the `reblogs`/`replies` options, and media links are kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from pydantic import Field, model_validator

from tradewatch.config import SourceSpec
from tradewatch.errors import SourceError
from tradewatch.models import Document
from tradewatch.sources._offload import off_loop
from tradewatch.sources._text import guess_lang, html_to_text
from tradewatch.sources.base import RequestOptions, SourceResult, each_item, result_of
from tradewatch.sources.rss import fetch_feed

if TYPE_CHECKING:
    from tradewatch.fetch import Fetcher, FetchResponse

__all__ = ["TruthSocialOptions", "TruthSocialSource", "status_document"]


class TruthSocialOptions(SourceSpec):
    """An instance plus an account (id or handle), or a mirror feed URL."""

    account: str | None = Field(None, description="numeric account id")
    handle: str | None = Field(None, description="e.g. realDonaldTrump; looked up once per process")
    reblogs: bool = Field(True, description="keep re-posts (RT); a re-post of a tariff claim is news too")
    replies: bool = Field(False, description="keep replies to other accounts (a thread's own parts are kept)")
    limit: int = Field(40, ge=1, le=40, description="statuses per API page (the API's maximum is 40)")
    max_pages: int = Field(
        5, ge=1, le=20, description="pages read back to the last post seen, after an outage (API only)"
    )

    @model_validator(mode="after")
    def _needs_url(self) -> TruthSocialOptions:
        if not self.url:
            raise ValueError("url is required: the instance (with account/handle) or a mirror feed")
        return self


def _title(text: str, fallback: str) -> str:
    first = text.strip().split("\n", 1)[0] if text.strip() else ""
    if not first:
        return fallback
    return first if len(first) <= 140 else first[:139].rstrip() + "…"


def status_document(status: dict[str, Any], *, source: str, base: str) -> Document:
    """One Mastodon status as a Document; a reblog carries the original's content and link."""
    shown = status.get("reblog") if isinstance(status.get("reblog"), dict) else status
    assert isinstance(shown, dict)
    account = shown.get("account") or {}
    acct = str(account.get("acct") or account.get("username") or "")
    text = html_to_text(str(shown.get("content") or ""))
    ident = str(status.get("url") or status.get("uri") or f"{base.rstrip('/')}/@{acct}/{status.get('id')}")
    # a re-post without a page of its own links the original's page, not an ActivityPub address
    url = str(status.get("url") or (shown is not status and shown.get("url")) or ident)
    extra: dict[str, Any] = {"status_id": str(status.get("id", ""))}
    media = [
        m.get("url") or m.get("remote_url")
        for m in shown.get("media_attachments") or []
        if isinstance(m, dict)
    ]
    if any(media):
        extra["media"] = [m for m in media if m]
    card = shown.get("card")
    if isinstance(card, dict) and card.get("url"):
        extra["card_url"] = card["url"]
    if shown is not status:
        extra["reblog_of"] = str(shown.get("url") or shown.get("uri") or "")
        extra["reblog_account"] = acct
        text = f"RT @{acct}: {text}" if text else f"RT @{acct}"
    if status.get("in_reply_to_id"):
        extra["in_reply_to_id"] = str(status["in_reply_to_id"])
        own = (status.get("account") or {}).get("id")
        if own is not None and str(status.get("in_reply_to_account_id")) == str(own):
            extra["thread"] = True  # a reply to the account's own post: the next part of a thread
    if status.get("edited_at"):
        extra["edited_at"] = status["edited_at"]
    created = status.get("created_at")
    published = datetime.fromisoformat(created) if isinstance(created, str) and created else None
    when = published.date().isoformat() if published else ""
    return Document(
        id=ident,
        source=source,
        url=url,
        title=_title(text, f"[media] post of {when}".strip()),
        text=text,
        published_at=published,
        lang=guess_lang(text, status.get("language")),
        extra=extra,
    )


def _all_newer(page: list[dict[str, Any]], newest: int, limit: int) -> bool:
    """A full page whose posts are all newer than `newest`: an older page may hold unseen ones."""
    ids = [str(s.get("id", "")) for s in page]
    return len(page) >= limit and all(i.isdigit() and int(i) > newest for i in ids)


def _is_reblog(doc: Document) -> bool:
    return (
        doc.text.startswith(("RT ", "RT:"))
        or doc.title.startswith(("RT ", "RT:"))
        or "reblog_of" in doc.extra
    )


class TruthSocialSource:
    """Polls one account's statuses (conditional GET), or a mirror feed."""

    kind: ClassVar[str] = "truthsocial"
    Options: ClassVar[type[SourceSpec]] = TruthSocialOptions

    def __init__(self, options: SourceSpec) -> None:
        self.options = (
            options
            if isinstance(options, TruthSocialOptions)
            else TruthSocialOptions.model_validate(options.model_dump())
        )
        self._account_id: str | None = self.options.account
        self.request = RequestOptions.for_source(self.options)

    async def fetch(self, fetcher: Fetcher) -> SourceResult:
        if self.options.account or self.options.handle:
            return await self._fetch_api(fetcher, self.request)
        resp, docs = await fetch_feed(fetcher, self.options, self.request)
        return result_of(resp, self._keep(docs))

    def _keep(self, docs: list[Document]) -> list[Document]:
        kept = []
        for doc in docs:
            if _is_reblog(doc):
                doc.extra.setdefault("reblog", True)
                if not self.options.reblogs:
                    continue
            if not self.options.replies and "in_reply_to_id" in doc.extra and not doc.extra.get("thread"):
                continue
            kept.append(doc)
        return kept

    def _statuses(self, resp: FetchResponse) -> list[dict[str, Any]]:
        statuses = resp.json()
        if not isinstance(statuses, list):
            raise SourceError(
                f"statuses API answered with {type(statuses).__name__}, not a list ({resp.url})",
                source=self.options.name,
            )
        return [s for s in statuses if isinstance(s, dict)]

    async def _fetch_api(self, fetcher: Fetcher, opts: RequestOptions) -> SourceResult:
        base = self.options.url.rstrip("/")
        limit = self.options.limit
        requests = 0
        if self._account_id is None:
            handle = (self.options.handle or "").lstrip("@")
            found = await fetcher.get(
                f"{base}/api/v1/accounts/lookup?acct={quote(handle)}", opts, accept="application/json"
            )
            requests += 1
            data = found.json()
            if not isinstance(data, dict) or not data.get("id"):
                raise SourceError(
                    f"account lookup for @{handle} returned no id ({found.url})", source=self.options.name
                )
            self._account_id = str(data["id"])
        query = f"limit={self.options.limit}&exclude_replies={str(not self.options.replies).lower()}"
        query += f"&exclude_reblogs={str(not self.options.reblogs).lower()}"
        url = f"{base}/api/v1/accounts/{quote(self._account_id)}/statuses?{query}"
        resp = await fetcher.get(url, opts, conditional=True, accept="application/json")
        requests += 1
        if resp.not_modified:
            return result_of(resp, [], requests=requests)
        statuses = self._statuses(resp)
        stored = await fetcher.cursor(url)  # the newest status id a committed poll read (ids grow)
        newest = int(stored) if stored and stored.isdigit() else None
        pages = 1
        # Posts past the first page since the last poll (the worker was down, the source failing):
        # older pages, down to the newest post seen before, so none is skipped.
        while (
            newest is not None
            and pages < self.options.max_pages
            and _all_newer(statuses[-limit:], newest, limit)
        ):
            oldest = min(int(s["id"]) for s in statuses[-limit:])
            older = await fetcher.get(f"{url}&max_id={oldest}", opts, accept="application/json")
            requests += 1
            pages += 1
            statuses += self._statuses(older)
        ids = [int(s["id"]) for s in statuses if str(s.get("id", "")).isdigit()]
        docs = await off_loop(
            self.options.name,
            lambda: each_item(
                statuses,
                lambda s: status_document(s, source=self.options.name, base=base),
                source=self.options.name,
            ),
        )
        result = result_of(resp, self._keep(docs), requests=requests)
        if ids:
            result.cursors[url] = str(max(ids + ([newest] if newest is not None else [])))
        return result
