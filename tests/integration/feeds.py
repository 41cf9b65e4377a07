"""A local feed, a rule and a config for end-to-end runs of the worker (shared by the integration tests)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

from tests.conftest import tradewatch_env
from tests.fakeslack import FakeSlack
from tests.servers import Response

RULE = """\
rules:
  - id: rare-earth-export-control
    title: Export controls on rare-earth items
    tags: [export-control]
    severity: critical
    match:
      all:
        - any: [rare earth, 稀土, samarium]
        - any: [export control, 出口管制]
      none: [draft]
"""


def rss(items: list[tuple[str, str, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>https://example.org/{guid}</link><guid>{guid}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate><description>{title}</description></item>"
        for guid, title, when in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>wire</title>'
        f"<link>https://example.org/</link><description>d</description>{body}</channel></rss>"
    ).encode()


class Feed:
    """A feed whose items the test changes between runs."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, datetime]] = []

    def __call__(self, _request: object) -> Response:
        return Response(200, rss(self.items), {"Content-Type": "application/rss+xml; charset=utf-8"})


def write_config(
    tmp_path: Path, *, redis_url: str, feed_url: str, slack: FakeSlack, window: str = "3d"
) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "export.yaml").write_text(RULE, encoding="utf-8")
    config = tmp_path / "tradewatch.yaml"
    config.write_text(
        f"""\
redis_url: {redis_url}
state_dir: ./var
rules: ./rules
first_poll_window: {window}
http: {{allow_private: true, retries: 0, timeout: 5}}
server: {{enabled: false}}
sources:
  - {{name: wire-rare-earths, kind: rss, url: "{feed_url}", every: 1m}}
notifiers:
  slack: {{token: {slack.token}, base_url: "{slack.base_url}", routes: {{default: "#trade-alerts"}}}}
""",
        encoding="utf-8",
    )
    return config


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    env = tradewatch_env(TRADEWATCH_LOG_FORMAT="json")
    return subprocess.run(
        [sys.executable, "-m", "tradewatch", "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
