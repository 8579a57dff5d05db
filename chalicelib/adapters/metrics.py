"""Metrics as CloudWatch Embedded Metric Format lines on standard output (``core.metrics`` builds them).

Lambda sends each line written to standard output to CloudWatch Logs as it is; a line that is an EMF
document becomes a metric there. The logging module is not used: Lambda's log format would prefix the
line and CloudWatch would no longer read it as EMF.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from chalicelib.core.metrics import COUNT, emf_line


class EmfMetrics:
    """EMF lines to ``write``; by default standard output inside Lambda, a debug log line elsewhere (a replay,
    ``chalice local`` and the demo would otherwise print every data point)."""

    def __init__(self, stage: str, clock: Callable[[], float], write: Callable[[str], object] | None = None) -> None:
        self._stage = stage
        self._clock = clock
        self._write = write or (_stdout if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else _debug)

    def record(self, name: str, value: float, unit: str = COUNT, **dimensions: str) -> None:
        self._write(emf_line(self._stage, name, value, unit, int(self._clock() * 1000), dimensions))


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _debug(line: str) -> None:
    logging.getLogger("mcd.metrics").debug(line)
