"""Generated RSS feeds and HTML list pages, served fast with ETags, for the poll, latency and soak benchmarks.

The server is a bare asyncio protocol (HTTP/1.1 keep-alive, GET only, `If-None-Match`
→ 304) run in its own process, so its CPU never competes with the benchmark
driver's GIL. It listens on several loopback addresses (127.0.0.1, 127.0.0.2, …)
on one port: each address is a separate host for the clients' per-host limits,
as real sources spread over many sites.

    python -m bench.feeds --sources 1000 --hosts 50 [--change-every 60]

prints `READY <port>` on stdout once it listens. Paths: `/feed/<i>` (RSS 2.0) and
`/page/<i>` (an HTML list page, items as `ul.list li` with `a` and `span.date`);
`/__stats` answers the counts of connections and of 200, 304 and 404 answers so far.
With `--change-every S`, source i gains a new item every S seconds (staggered per
source) and its ETag changes; without it, content never changes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import signal
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

__all__ = [
    "HTML_SELECT",
    "ITEMS_PER_SOURCE",
    "feed_path",
    "host_of",
    "item_body",
    "page_path",
    "render_feed",
    "render_page",
]

ITEMS_PER_SOURCE = 20
HTML_SELECT = {"item": "ul.list li", "title": "a", "link": "a@href", "date": "span.date"}

# Titles drawn per item: mostly routine government and wire headlines, a few (about 4%) of
# the kind the shipped rulebook is written for, in Chinese and English, so the cold cycle
# matches for real. Relevant titles vary in item, rate and number, so that they form
# many distinct events, as a real cycle's do, rather than a thousand reports of one.
_ROUTINE = [
    "商务部召开例行新闻发布会",
    "商务部部长会见来访外宾",
    "全国吸收外资情况通报",
    "关于开展外贸企业培训工作的通知",
    "海关总署发布进出口数据",
    "Weekly market update: copper and aluminium prices",
    "Ministry announces new e-commerce pilot zones",
    "Port throughput rises in November",
    "Press briefing on consumer spending programme",
    "Regional trade fair opens with exhibitors",
    "Statement on bilateral investment treaty review",
    "Commerce official visits logistics hub",
]
_ITEMS_ZH = ["稀土", "镓", "锗", "锑", "石墨", "钨", "钼", "铟", "钐", "钆", "铽", "镝", "锂电池", "超硬材料"]
_ITEMS_EN = [
    "rare earth",
    "gallium",
    "germanium",
    "antimony",
    "graphite",
    "tungsten",
    "indium",
    "samarium",
    "terbium",
    "dysprosium",
    "lithium battery",
    "superhard material",
]
_RELEVANT = [
    "商务部 海关总署公告{y}年第{n}号 关于对{zh}相关物项实施出口管制的决定",
    "商务部公告{y}年第{n}号 关于{zh}出口许可管理的公告",
    "MOFCOM Announcement No. {n} of {y} on export control of {en} items",
    "US raises tariffs on Chinese {en} imports to {r}% effective {d}",
    "China suspends additional {r}% tariff on US {en} for one year from {d}",
]
_WORDS = [
    "ministry",
    "said",
    "measure",
    "follows",
    "consultations",
    "industry",
    "will",
    "reviewed",
    "exporters",
    "should",
    "consult",
    "published",
    "list",
    "items",
    "apply",
    "through",
    "usual",
    "channels",
    "officials",
    "noted",
    "demand",
    "supply",
    "chain",
    "firms",
    "customs",
    "quarterly",
    "data",
    "port",
    "shipping",
    "freight",
    "contract",
    "buyers",
    "sellers",
    "volume",
    "prices",
    "rose",
    "fell",
    "steady",
    "outlook",
    "analysts",
    "expect",
    "talks",
    "delegation",
    "meeting",
    "statement",
    "policy",
    "review",
    "framework",
    "agreement",
    "partners",
    "markets",
    "investment",
    "growth",
    "factory",
    "output",
    "orders",
    "inventory",
    "logistics",
    "warehouse",
    "regional",
    "provincial",
    "national",
    "council",
    "committee",
    "notice",
    "guidance",
    "procedure",
    "application",
    "licence",
    "permit",
    "quota",
    "registration",
    "compliance",
    "inspection",
]
_WORDS_ZH = [
    "相关企业",
    "应按照规定",
    "办理手续",
    "具体事项",
    "以正式文件为准",
    "进一步",
    "加强",
    "管理",
    "市场",
    "供应链",
    "稳定",
    "合作",
    "发展",
    "服务",
    "企业",
    "地区",
    "政策",
    "措施",
]


def item_body(source: int, seq: int) -> str:
    """Forty-odd words that differ per item, as real bodies do (clustering compares them)."""
    rnd = random.Random(source * 7_000_003 + seq)
    words = [rnd.choice(_WORDS) for _ in range(36)] + [rnd.choice(_WORDS_ZH) for _ in range(6)]
    return " ".join(words).capitalize() + "."


_BOILERPLATE = "".join(
    f'<li class="nav-item"><a href="/section/{i}">栏目 {i} Section {i}</a></li>' for i in range(120)
)


def host_of(index: int, hosts: int) -> str:
    """The loopback address that serves source `index` (127.0.0.1 … 127.0.0.<hosts>)."""
    return f"127.0.0.{1 + index % hosts}"


def feed_path(index: int) -> str:
    return f"/feed/{index}"


def page_path(index: int) -> str:
    return f"/page/{index}"


def _title(source: int, seq: int) -> str:
    rnd = random.Random(source * 1_000_003 + seq)
    if rnd.random() < 0.04:
        return rnd.choice(_RELEVANT).format(
            y=rnd.randint(2000, 2026),
            n=rnd.randint(1, 999),
            r=rnd.randint(5, 150),
            zh=rnd.choice(_ITEMS_ZH),
            en=rnd.choice(_ITEMS_EN),
            d=f"{rnd.choice(['March', 'May', 'June', 'August', 'November'])} {rnd.randint(1, 28)}",
        )
    return f"{rnd.choice(_ROUTINE)} ({source}-{seq})"


def _items(source: int, version: int, t0: float, every: float) -> list[tuple[int, str, datetime]]:
    """(seq, title, published) of the newest items; static sources spread items over ~8 days."""
    out = []
    for seq in range(version, version - ITEMS_PER_SOURCE, -1):
        if every > 0:
            published = t0 + seq * every - (source % 97) * every / 97
        else:
            published = t0 - (version - seq) * 9 * 3600 - (source % 7) * 3600
        out.append((seq, _title(source, seq), datetime.fromtimestamp(published, UTC)))
    return out


def render_feed(source: int, version: int, base: str, t0: float, every: float = 0.0) -> bytes:
    """An RSS 2.0 feed of the source's newest items."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Bench feed {source}</title><link>{base}/</link><description>generated</description>",
    ]
    for seq, title, published in _items(source, version, t0, every):
        link = f"{base}/feed/{source}/item/{seq}"
        parts.append(
            f"<item><title>{escape(title)}</title><link>{link}</link>"
            f'<guid isPermaLink="false">bench-feed-{source}-{seq}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(title)}. {escape(item_body(source, seq))}</description></item>"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def render_page(source: int, version: int, base: str, t0: float, every: float = 0.0) -> bytes:
    """An HTML list page in the style of a ministry's announcements list."""
    rows = []
    for seq, title, published in _items(source, version, t0, every):
        day = published.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        rows.append(
            f'<li><a href="/page/{source}/item/{seq}" title="{escape(title)}">{escape(title)}</a>'
            f'<span class="date">{day}</span></li>'
        )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>公告列表 {source}</title><style>body{{font-family:sans-serif}}.list li{{margin:4px}}</style>"
        f'</head><body><div class="header"><ul class="nav">{_BOILERPLATE}</ul></div>'
        f'<div class="main"><h1>公告 Announcements</h1><ul class="list">{"".join(rows)}</ul></div>'
        '<div class="footer">主办单位：Bench 版权所有</div></body></html>'
    ).encode()


class _Content:
    """Bodies and ETags by path, rendered once per (path, version)."""

    def __init__(self, sources: int, change_every: float, port: int, hosts: int) -> None:
        self.sources = sources
        self.change_every = change_every
        self.port = port
        self.hosts = hosts
        self.t0 = time.time()
        self._cache: dict[str, tuple[int, bytes, bytes]] = {}

    def _version(self, source: int) -> int:
        if self.change_every <= 0:
            return ITEMS_PER_SOURCE - 1
        offset = (source % 97) * self.change_every / 97
        return ITEMS_PER_SOURCE - 1 + int((time.time() - self.t0 + offset) // self.change_every)

    def get(self, path: str) -> tuple[bytes, bytes, bytes] | None:
        """(body, etag, content type) or None for an unknown path."""
        kind, _, number = path.strip("/").partition("/")
        if kind not in ("feed", "page") or not number.isdigit() or int(number) >= self.sources:
            return None
        source = int(number)
        version = self._version(source)
        hit = self._cache.get(path)
        if hit is None or hit[0] != version:
            base = f"http://{host_of(source, self.hosts)}:{self.port}"
            render = render_feed if kind == "feed" else render_page
            body = render(source, version, base, self.t0, self.change_every)
            etag = b'"' + hashlib.blake2b(body, digest_size=8).hexdigest().encode() + b'"'
            hit = (version, body, etag)
            self._cache[path] = hit
        ctype = b"application/rss+xml; charset=utf-8" if kind == "feed" else b"text/html; charset=utf-8"
        return hit[1], hit[2], ctype


class _Http(asyncio.Protocol):
    """Just enough HTTP/1.1: GET, keep-alive, If-None-Match."""

    def __init__(self, content: _Content, stats: dict[str, int]) -> None:
        self.content = content
        self.stats = stats
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.stats["connections"] += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer and self.transport is not None:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        assert self.transport is not None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get(b"connection", b"").lower() == b"close" or parts[-1] == b"HTTP/1.0"
        found = self.content.get(path.split("?", 1)[0])
        keep = b"close" if close else b"keep-alive"
        if path == "/__stats":
            body = json.dumps(self.stats).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: "
                + keep
                + b"\r\n\r\n"
                + body
            )
        elif found is None:
            self.stats["404"] += 1
            self.transport.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: " + keep + b"\r\n\r\n"
            )
        elif headers.get(b"if-none-match") == found[1]:
            self.stats["304"] += 1
            self.transport.write(
                b"HTTP/1.1 304 Not Modified\r\nETag: " + found[1] + b"\r\nConnection: " + keep + b"\r\n\r\n"
            )
        else:
            self.stats["200"] += 1
            body, etag, ctype = found
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: "
                + ctype
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nETag: "
                + etag
                + b"\r\nConnection: "
                + keep
                + b"\r\n\r\n"
                + body
            )
        if close:
            self.transport.close()
            self.transport = None


async def _serve(sources: int, hosts: int, change_every: float, port: int) -> None:
    loop = asyncio.get_running_loop()
    stats = {"connections": 0, "200": 0, "304": 0, "404": 0}
    servers: list[asyncio.Server] = []
    content: _Content | None = None
    for attempt in range(20):
        try:
            first = await loop.create_server(lambda: _Http(content, stats), "127.0.0.1", port)  # type: ignore[arg-type]
            chosen = first.sockets[0].getsockname()[1]
            servers = [first]
            for h in range(2, hosts + 1):
                servers.append(
                    await loop.create_server(
                        lambda: _Http(content, stats),  # type: ignore[arg-type]
                        f"127.0.0.{h}",
                        chosen,
                    )
                )
            break
        except OSError:
            for s in servers:
                s.close()
            servers = []
            if attempt == 19:
                raise
    content = _Content(sources, change_every, chosen, hosts)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {chosen}", flush=True)
    await stop.wait()
    for s in servers:
        s.close()
    print(f"STATS {stats}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--change-every", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.sources, args.hosts, args.change_every, args.port))


if __name__ == "__main__":
    main()
