"""The worker's HTTP server: health, readiness, metrics, the deadline calendar and a status page."""

from tradewatch.web.app import WorkerState, create_app
from tradewatch.web.server import serve

__all__ = ["WorkerState", "create_app", "serve"]
