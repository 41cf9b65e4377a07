"""Events: documents from several sources about one happening, clustered by shared keys or text.

A document joins an earlier event when it shares a canonical URL or a document
number with it, or an announcement number and a rule, or a rule and its effective or
end date with agreeing facts (items, countries, rates), or near-duplicate text
(MinHash over word and character bigrams of the normalised title and text, LSH
banded, estimated Jaccard ≥ SIM_THRESHOLD) and a rule, within CLUSTER_WINDOW of
the event's last report. The lookup of a whole poll is one MGET over the index
keys, and one more for the events found.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis.asyncio as aioredis

from tradewatch.errors import StoreError
from tradewatch.matching.engine import MATCH_TEXT_MAX
from tradewatch.matching.normalize import normalize
from tradewatch.models import Document, Match, SourceRef
from tradewatch.store.commit import redis_errors
from tradewatch.store.keys import Keys

__all__ = [
    "Event",
    "EventIndex",
    "EventSource",
    "canonical_url",
    "cluster_keys",
    "fact_tokens",
    "facts_agree",
    "minhash",
    "normalize_announcement",
    "sim_bands",
    "similarity",
]

MAX_SOURCES = 30  # sources an event lists (its JSON and every reply carry the list: keep both small)
MAX_REPLIES = 20  # thread replies per event; later reports join silently (recorded as suppressed)
FACTS_MIN_SHARED = 2  # a Chinese notice and an English wire story on it share items and countries
FACTS_THRESHOLD = 0.5
SIM_THRESHOLD = 0.5  # estimated Jaccard of shingle sets: rewrites of one story score 0.6+, others < 0.2
SIM_MIN_SHINGLES = 8  # shorter texts (headline-only posts) give too many chance collisions
SIM_PERMUTATIONS = 32
_BANDS = 16  # 16 bands of 2 rows: candidates at J=0.5 with p≈0.99, at J=0.2 with p≈0.48 (then verified)
_UNPACK = struct.Struct(f">{SIM_PERMUTATIONS}I").unpack
_TRACKING = re.compile(r"^(utm_.*|fbclid|gclid|mc_[ce]id|ref|spm|from|share)$", re.IGNORECASE)
_ANN_ZH = re.compile(r"(\d{4})\s*年\s*第?\s*(\d+)\s*号")
_ANN_EN = re.compile(r"no\.?\s*(\d+)\s*(?:of|,)\s*(\d{4})", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+|[\u3400-\u9fff]")


def canonical_url(url: str) -> str:
    """The same page however it is linked: no scheme, `www.`, fragment, tracking or trailing slash.

    "" for a link no browser could open (`:8o8o` or `:99999` as port, an open `[`): such a
    page is not clustered by its link."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().removeprefix("www.")
        number = parts.port
    except ValueError:
        return ""
    if not host:
        return ""
    port = f":{number}" if number and number not in (80, 443) else ""
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = sorted((k, v) for k, v in pairs if not _TRACKING.match(k))
    path = parts.path.rstrip("/") or "/"
    return host + port + path + ("?" + urlencode(query) if query else "")


def normalize_announcement(value: str) -> str:
    """`2025年第18号` and `No. 18 of 2025` → `2025-18`; anything else normalised verbatim."""
    text = normalize(value)
    m = _ANN_ZH.search(text)
    if m:
        return f"{m.group(1)}-{int(m.group(2))}"
    m = _ANN_EN.search(text)
    if m:
        return f"{m.group(2)}-{int(m.group(1))}"
    return re.sub(r"\s+", "", text)


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def _fact_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v).strip()]
    return [str(value)] if value is not None else []


def cluster_keys(doc: Document, matches: Sequence[Match]) -> dict[str, list[str]]:
    """Shared identities of a document: `url` and `docnum` join alone, `ann` joins with a shared rule,
    `fact` (rule + effective date) joins when the extracted facts also agree (see `facts_agree`),
    `end` (rule + the date a measure runs until) when they agree and name the same items."""
    keys: dict[str, list[str]] = {"url": [], "docnum": [], "ann": [], "fact": [], "end": []}
    url = canonical_url(doc.url)
    if url:
        keys["url"].append(_digest(url))
    numbers = _fact_values(doc.extra.get("document_number"))
    for match in matches:
        numbers += _fact_values(match.facts.get("document_number"))
        for value in _fact_values(match.facts.get("announcement")):
            norm = normalize_announcement(value)
            if norm and _digest(norm) not in keys["ann"]:
                keys["ann"].append(_digest(norm))
        for date in _fact_values(match.facts.get("effective_date"))[:1]:
            keys["fact"].append(_digest(f"{match.rule}|{date}"))
        for date in _fact_values(match.facts.get("until"))[:1]:  # "truce extended until November 10"
            keys["end"].append(_digest(f"{match.rule}|until|{date}"))
    for number in numbers:
        if _digest(number.strip().lower()) not in keys["docnum"]:
            keys["docnum"].append(_digest(number.strip().lower()))
    return keys


def fact_tokens(matches: Sequence[Match]) -> list[str]:
    """Language-neutral facts (glossary labels of items and countries, rates): what a report says."""
    tokens: set[str] = set()
    for match in matches:
        for name in ("items", "countries", "rates"):
            tokens.update(f"{name}:{v}".lower() for v in _fact_values(match.facts.get(name)))
    return sorted(tokens)


def facts_agree(a: Sequence[str], b: Sequence[str]) -> bool:
    """Two reports name the same things: at least FACTS_MIN_SHARED shared, Jaccard ≥ FACTS_THRESHOLD."""
    sa, sb = set(a), set(b)
    shared = len(sa & sb)
    return shared >= FACTS_MIN_SHARED and shared / len(sa | sb) >= FACTS_THRESHOLD


def _items_agree(a: Sequence[str], b: Sequence[str]) -> bool:
    """Two reports of a state that runs until one date name the same goods (or none): a tariff
    suspension and an export-control suspension until the same day are two measures."""
    ia, ib = {t for t in a if t.startswith("items:")}, {t for t in b if t.startswith("items:")}
    return ia == ib or len(ia & ib) / len(ia | ib) >= FACTS_THRESHOLD


def _shingles(text: str) -> set[str]:
    """Latin word bigrams and Chinese character bigrams, so both languages shingle comparably."""
    words = _WORD.findall(normalize(text))
    out: set[str] = set()
    for first, second in itertools.pairwise(words):
        cjk = len(first) == 1 and "\u3400" <= first <= "\u9fff"
        if cjk == (len(second) == 1 and "\u3400" <= second <= "\u9fff"):
            out.add(first + (" " if not cjk else "") + second)
    return out


def minhash(text: str) -> list[int] | None:
    """MinHash signature (SIM_PERMUTATIONS 32-bit values); None when the text is too short to tell.

    Each shingle's SHAKE-128 output supplies one independent hash per permutation, so
    the signature is a column-wise minimum computed in C (about 10 µs for a short text).
    """
    shingles = _shingles(text)
    if len(shingles) < SIM_MIN_SHINGLES:
        return None
    rows = [_UNPACK(hashlib.shake_128(s.encode("utf-8")).digest(4 * SIM_PERMUTATIONS)) for s in shingles]
    return list(map(min, zip(*rows, strict=True)))


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """Estimated Jaccard similarity of two signatures."""
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def sim_bands(signature: Sequence[int]) -> list[str]:
    """LSH band keys: documents with Jaccard ≥ 0.5 share one with probability ≥ 0.99."""
    rows = len(signature) // _BANDS
    return [
        f"{band}.{_digest(','.join(map(str, signature[band * rows : (band + 1) * rows])))[:12]}"
        for band in range(_BANDS)
    ]


def dump_signature(signature: Sequence[int]) -> str:
    return "".join(f"{v:08x}" for v in signature)


def load_signature(text: str) -> list[int]:
    return [int(text[i : i + 8], 16) for i in range(0, len(text), 8)]


@dataclass
class EventSource:
    """One report of an event, as later replies list it."""

    source: str
    url: str = ""
    title: str = ""
    official: bool = False
    published_at: str | None = None

    @classmethod
    def of(cls, source: str, doc: Document, *, official: bool) -> EventSource:
        return cls(
            source=source,
            url=doc.url,
            title=doc.title[:300],
            official=official,
            published_at=doc.published_at.isoformat() if doc.published_at else None,
        )


@dataclass
class Event:
    """The state of one event: its first alert (the thread root) and every source that reported it."""

    id: str
    root: str
    rule: str
    severity: str
    notify: list[str]
    rules: list[str]
    created: str
    sources: list[EventSource] = field(default_factory=list)
    signature: str | None = None
    anns: list[str] = field(default_factory=list)  # announcement index keys of its reports
    docnums: list[str] = field(default_factory=list)  # document-number index keys of its reports
    tokens: list[str] = field(default_factory=list)  # fact tokens of its reports (for `facts_agree`)
    replies: int = 0  # thread replies raised so far (capped at MAX_REPLIES)
    reports: int = 1  # documents that joined, listed or not
    updates: list[str] = field(default_factory=list)  # last update alert ids: one per page and text
    root_notify: list[str] | None = None  # the root's recipients, once a raise added to `notify`

    def add_report(self, source: EventSource, probe: Probe | None) -> None:
        """Count a report; keep its source (up to MAX_SOURCES) and its numbers (for conflicts)."""
        self.reports += 1
        if len(self.sources) < MAX_SOURCES:
            self.sources.append(source)
        if probe is not None:
            self.anns = list(dict.fromkeys(self.anns + probe.by_rule))[:MAX_SOURCES]
            self.docnums = list(dict.fromkeys(self.docnums + probe.docnums))[:MAX_SOURCES]
            self.tokens = sorted(set(self.tokens) | set(probe.tokens))[: 4 * MAX_SOURCES]

    @property
    def official(self) -> bool:
        return any(s.official for s in self.sources)

    def refs(self) -> list[SourceRef]:
        """The sources as alerts list them."""
        return [
            SourceRef(
                source=s.source,
                url=s.url,
                title=s.title,
                official=s.official,
                published_at=datetime.fromisoformat(s.published_at) if s.published_at else None,
            )
            for s in self.sources
        ]

    def dump(self) -> str:
        """The event as JSON, fields in declaration order (what `asdict` gives, without its deep copy)."""
        data = {name: getattr(self, name) for name in _EVENT_FIELDS}
        data["sources"] = [{name: getattr(s, name) for name in _SOURCE_FIELDS} for s in self.sources]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def parse(cls, raw: str) -> Event:
        """Read an event; fields a newer version added are ignored, so old and new workers mix."""
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        source_fields = {f.name for f in fields(EventSource)}
        data["sources"] = [
            EventSource(**{k: v for k, v in s.items() if k in source_fields}) for s in data.get("sources", [])
        ]
        return cls(**{k: v for k, v in data.items() if k in known})


_EVENT_FIELDS = tuple(f.name for f in fields(Event))
_SOURCE_FIELDS = tuple(f.name for f in fields(EventSource))


@dataclass
class Probe:
    """Index keys of one document, so the batch reads them all in one MGET."""

    exact: list[str]  # url/docnum: join whatever rule matched
    by_rule: list[str]  # announcement: join only with a shared rule
    bands: list[str]
    signature: list[int] | None
    docnums: list[str] = field(default_factory=list)  # the docnum keys among `exact`
    facts: list[str] = field(default_factory=list)  # rule + effective-date keys: join if facts agree
    tokens: list[str] = field(default_factory=list)  # the facts compared then (fact_tokens)
    ends: list[str] = field(default_factory=list)  # rule + until-date keys: join if facts and items agree

    def all_keys(self) -> list[str]:
        return self.exact + self.by_rule + self.facts + self.ends + self.bands

    def conflicts(self, event: Event) -> bool:
        """Different announcement or document numbers: not the same event, however similar the text."""
        anns, docnums = set(self.by_rule), set(self.docnums)
        return bool(
            (anns and event.anns and anns.isdisjoint(event.anns))
            or (docnums and event.docnums and docnums.isdisjoint(event.docnums))
        )


class EventIndex:
    """Finds the event a document belongs to; writes go through the pipeline's Batch."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def probe(self, doc: Document, matches: Sequence[Match]) -> Probe:
        """A matched document's identities; an unmatched one has none (it can neither alert nor join)."""
        if not matches:
            return Probe(exact=[], by_rule=[], bands=[], signature=None)
        ck = cluster_keys(doc, matches)
        value = minhash(f"{doc.title}\n{doc.text[:MATCH_TEXT_MAX]}")  # what the rules read, no more
        docnums = [self.keys.event_index("docnum", v) for v in ck["docnum"]]
        return Probe(
            exact=[self.keys.event_index("url", v) for v in ck["url"]] + docnums,
            docnums=docnums,
            by_rule=[self.keys.event_index("ann", v) for v in ck["ann"]],
            facts=[self.keys.event_index("fact", v) for v in ck["fact"]],
            ends=[self.keys.event_index("fact", v) for v in ck["end"]],
            tokens=fact_tokens(matches),
            bands=[self.keys.event_index("sim", b) for b in sim_bands(value)] if value is not None else [],
            signature=value,
        )

    async def read(self, keys: Iterable[str]) -> dict[str, str | None]:
        """Current values of index or event keys, one MGET."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        try:
            values = await self.redis.mget(wanted)
        except redis_errors as exc:
            raise StoreError(f"redis event lookup failed: {exc}") from exc
        return {k: str(v) if v is not None else None for k, v in zip(wanted, values, strict=True)}


def choose_event(
    probe: Probe,
    rules: set[str],
    index: dict[str, str | None],
    events: dict[str, Event],
) -> str | None:
    """The event this document joins, preferring exact identities over text similarity."""
    for key in probe.exact:
        event_id = index.get(key)
        if event_id and event_id in events:
            return event_id
    for key in probe.by_rule:
        event_id = index.get(key)
        if event_id and event_id in events and rules & set(events[event_id].rules):
            return event_id
    for key in [*probe.facts, *probe.ends]:  # across languages: same rule and date, same items and places
        event = events.get(index.get(key) or "")
        if (
            event is not None
            and rules & set(event.rules)
            and not probe.conflicts(event)
            and facts_agree(probe.tokens, event.tokens)
            and (key in probe.facts or _items_agree(probe.tokens, event.tokens))
        ):
            return event.id
    best: tuple[float, str] | None = None
    for key in probe.bands:
        event_id = index.get(key)
        event = events.get(event_id or "")
        if event is None or event.signature is None or probe.signature is None:
            continue
        if not rules & set(event.rules) or probe.conflicts(event):
            continue
        score = similarity(probe.signature, load_signature(event.signature))
        if score >= SIM_THRESHOLD and (best is None or score > best[0]):
            best = (score, event.id)
    return best[1] if best else None
