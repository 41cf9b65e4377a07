"""Paths of the deployment files under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in a file, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
