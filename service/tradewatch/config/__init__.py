"""Settings: YAML file + `${VAR}` interpolation + `TRADEWATCH_*` overrides, validated once.

Lookup order (contract): `--config`, `$TRADEWATCH_CONFIG`, `./tradewatch.yaml`, the
built-in default (`tradewatch/default_config.yaml`). Relative paths in a file
resolve against the file's folder. Errors name the dotted key and the problem.
"""

from tradewatch.config.loading import BUILTIN_CONFIG, PACKAGED_RULES, find_config, load_settings
from tradewatch.config.settings import (
    ConsoleSettings,
    DeliverySettings,
    DigestSchedule,
    EmailSettings,
    HttpSettings,
    NotifierSettings,
    ServerSettings,
    Settings,
    SilenceSpec,
    SlackSettings,
    SourceSpec,
    TimezoneName,
    WebhookSettings,
    format_validation_error,
    validate_sources,
)

__all__ = [
    "BUILTIN_CONFIG",
    "PACKAGED_RULES",
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
    "find_config",
    "format_validation_error",
    "load_settings",
    "validate_sources",
]
