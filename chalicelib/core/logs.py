"""Structured logging: one JSON object per line, correlation ids, never secrets or whole payloads."""

from __future__ import annotations

import json
import logging
from typing import Any

OUTCOME_LOGGER = "mcd.outcome"


def log_json(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **fields}, default=str, sort_keys=False))


def log_outcome(outcome: dict[str, Any]) -> None:
    """The one structured line per outcome (the replay and dashboards read these)."""
    logging.getLogger(OUTCOME_LOGGER).info(json.dumps({"event": "outcome", "outcome": outcome}, default=str))
