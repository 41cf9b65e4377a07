"""The settings models: every config key, its type, default and check, declared once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tradewatch.durations import Duration
from tradewatch.errors import ConfigError
from tradewatch.matching.tree import did_you_mean

__all__ = [
    "ConsoleSettings",
    "DeliverySettings",
    "DigestSchedule",
    "EmailSettings",
    "HttpSettings",
    "NotifierSettings",
    "ServerSettings",
    "Settings",
    "SilenceSpec",
    "SlackSettings",
    "SourceSpec",
    "TimezoneName",
    "WebhookSettings",
    "format_validation_error",
    "validate_sources",
]


def _proxy_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a proxy is an http:// or https:// URL, e.g. http://proxy.internal:3128")
    return value


ProxyUrl = Annotated[str, AfterValidator(_proxy_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(_Strict):
    """The shared HTTP client's limits and manners."""

    timeout: float = Field(20.0, gt=0)
    concurrency: int = Field(32, ge=1)
    per_host: int = Field(2, ge=1, description="concurrent requests to one host")
    min_delay: float = Field(0.0, ge=0, description="seconds between two requests to one host")
    retries: int = Field(3, ge=0)
    user_agent: str = "tradewatch/0.1 (+https://github.com/tradewatch/tradewatch)"
    proxy: ProxyUrl | None = None
    max_bytes: int = Field(10_000_000, ge=1024)
    max_redirects: int = Field(5, ge=0)
    allow_private: bool = False


class ServerSettings(_Strict):
    """The worker's small HTTP server (health, metrics, calendar, status page)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    token: str | None = Field(None, description="require ?token= or Bearer token for / and /deadlines.ics")
    username: str | None = None
    password: str | None = None


class SourceSpec(_Strict):
    """Options every source kind takes; each kind extends this with its own model."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    url: str = ""
    every: Duration = timedelta(minutes=5)
    jitter: Duration | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True
    first_poll_window: Duration | None = None
    user_agent: str | None = None
    proxy: ProxyUrl | None = None
    timeout: float | None = Field(None, gt=0)
    max_bytes: int | None = Field(None, ge=1024)
    allow_private: bool | None = None
    official: bool = Field(
        False, description="an official publisher (ministry, register): ranks as confirmation"
    )

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("every must be longer than 0s (e.g. 30s, 5m)")
        return value


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError, OSError) as exc:  # not found: KeyError; "Europe" (a folder): OSError
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/Berlin)") from exc
    return value


TimezoneName = Annotated[str, AfterValidator(_known_timezone)]  # every timezone key of the config


class ConsoleSettings(_Strict):
    """Alerts printed by the worker: where, and as readable blocks or JSON lines."""

    stream: Literal["stdout", "stderr"] = "stdout"
    format: Literal["text", "json"] = "text"


class SlackSettings(_Strict):
    """Slack via the Web API (bot token) or an incoming webhook."""

    token: str | None = None
    webhook_url: str | None = None
    base_url: str = "https://slack.com/api/"
    routes: dict[str, str] = Field(default_factory=lambda: {"default": "#trade-alerts"})
    timezone: TimezoneName | None = None
    history_check: int = Field(
        100, ge=0, description="messages of channel history searched before a redelivery"
    )

    @model_validator(mode="after")
    def _needs_credentials(self) -> SlackSettings:
        if not self.token and not self.webhook_url:
            raise ValueError("set token (bot token, xoxb-…) or webhook_url")
        if self.token and "default" not in self.routes:
            raise ValueError("routes needs a 'default' channel")
        return self


class DigestSchedule(_Strict):
    """When the email digest goes out."""

    at: str = Field("07:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: TimezoneName = "UTC"
    every: Literal["daily", "weekdays", "weekly"] = "daily"
    weekday: int = Field(0, ge=0, le=6, description="for weekly: 0 = Monday")
    send_empty: bool = False


class EmailSettings(_Strict):
    """SMTP delivery of the digest."""

    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    digest: DigestSchedule = Field(default_factory=DigestSchedule)


class WebhookSettings(_Strict):
    """A signed JSON POST per alert."""

    url: str
    secret: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = 10.0


class NotifierSettings(_Strict):
    """Configured notifiers; none at all means console."""

    console: ConsoleSettings | None = None
    slack: SlackSettings | None = None
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None

    def configured(self) -> list[str]:
        names = [n for n in ("console", "slack", "email", "webhook") if getattr(self, n) is not None]
        return names or ["console"]


class SilenceSpec(_Strict):
    """Mute alerts of a rule, tag or source until a time (maintenance, known noise)."""

    rule: str | None = None
    tag: str | None = None
    source: str | None = None
    until: str
    reason: str = ""

    @field_validator("until")
    @classmethod
    def _is_a_time(cls, value: str) -> str:
        """A typo here would silently mute nothing, so check the date at load."""
        text = value.strip()
        try:
            if len(text) == 10:
                date.fromisoformat(text)
            else:
                datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time; write 2025-12-01 or 2025-12-01T08:00+01:00") from exc
        return text

    @model_validator(mode="after")
    def _says_what(self) -> SilenceSpec:
        if not (self.rule or self.tag or self.source):
            raise ValueError("a silence names a rule, a tag or a source")
        return self


class DeliverySettings(_Strict):
    """How hard the outbox tries before parking an alert in the dead-letter stream."""

    # 80 attempts on the default schedule span about 11 hours: a receiver's outage of a few
    # hours delays alerts; it does not park them for an operator to re-drive.
    max_attempts: int = Field(80, ge=1)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=10)
    claim_idle: Duration = timedelta(minutes=2)


class Settings(_Strict):
    """The whole configuration, validated; never changed after load."""

    config_file: Path | None = None
    redis_url: str | None = None
    state_dir: Path = Path("./var")
    key_prefix: str = Field("tradewatch", pattern=r"^[A-Za-z0-9:_.-]+$")
    rules: Path = Path("./rules")
    timezone: TimezoneName = "UTC"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    first_poll_window: Duration = timedelta(days=3)
    failure_alert_after: int = Field(5, ge=1, description="consecutive failures before an operator alert")
    http: HttpSettings = Field(default_factory=HttpSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    sources: list[SourceSpec] = Field(default_factory=list)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    silences: list[SilenceSpec] = Field(default_factory=list)
    reminder_grace: Duration = timedelta(hours=12)

    @field_validator("sources", mode="before")
    @classmethod
    def _validate_kinds(cls, value: Any) -> Any:
        """Each source validates against its kind's own options model."""
        if not isinstance(value, list):
            return value
        specs, errors = validate_sources(value)
        if errors:
            raise ConfigError("\n".join(errors))
        return specs

    def source(self, name: str) -> SourceSpec:
        for spec in self.sources:
            if spec.name == name:
                return spec
        raise ConfigError(f"no source named {name!r}", key="sources")

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def slack_routes(self) -> set[str] | None:
        """The routes `slack:ROUTE` targets may name: none without a slack notifier; any (None)
        under the built-in default config, which no one wrote and rules cannot be checked against."""
        if self.notifiers.slack is not None:
            return set(self.notifiers.slack.routes)
        return set() if self.config_file is not None else None


def validate_sources(raw_sources: list[Any]) -> tuple[list[SourceSpec], list[str]]:
    """Validate each source by its kind's Options; every problem as a `sources[i].key: …` line."""
    from tradewatch.sources import SOURCES

    specs: list[SourceSpec] = []
    errors: list[str] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_sources):
        if isinstance(raw, SourceSpec):
            specs.append(raw)
            continue
        if not isinstance(raw, dict):
            errors.append(f"sources[{index}]: expected a mapping with name, kind and url")
            continue
        kind = raw.get("kind")
        if kind not in SOURCES:
            known = ", ".join(sorted(SOURCES))
            errors.append(f"sources[{index}].kind: unknown kind {kind!r} (known: {known})")
            continue
        try:
            spec = SOURCES[kind].Options.model_validate(raw)
        except ValidationError as exc:
            errors.extend(
                format_validation_error(exc, prefix=f"sources[{index}]", model=SOURCES[kind].Options)
            )
            continue
        if spec.name in names:
            errors.append(f"sources[{index}].name: duplicate source name {spec.name!r}")
        names.add(spec.name)
        specs.append(spec)
    return specs, errors


def format_validation_error(
    exc: ValidationError, *, prefix: str = "", model: type[BaseModel] | None = None
) -> list[str]:
    """One `key.path: problem` line per pydantic error, without pydantic's noise.

    With the validated `model`, an unknown key gets a "did you mean" from the keys allowed
    where it stands, as rule files do.
    """
    lines = []
    for err in exc.errors():
        parts = [prefix] if prefix else []
        for loc in err["loc"]:
            if isinstance(loc, int):
                parts[-1:] = [f"{parts[-1] if parts else ''}[{loc}]"]
            else:
                parts.append(str(loc))
        key = ".".join(p for p in parts if p) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = _keys_at(model, err["loc"][:-1]) if model is not None else []
            msg = "unknown key" + did_you_mean(str(err["loc"][-1]), allowed)
        msg = msg.removeprefix("Value error, ")
        lines.append(f"{key}: {msg}")
    return lines


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys `model` allows at `loc` (list indexes skipped), by following field annotations."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        current = _model_in(field.annotation) if field is not None else None
    return [] if current is None else list(current.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `Slack | None` or `list[Route]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
