"""``mcd explain FILE...``: show what the parsers make of saved payloads, one JSON line per item.

Any payload shape ``chalicelib.parsing.events.parse_payload`` understands can be given (``-`` reads
stdin). Exit status: 0 when every file could be read, whatever it held (unreadable content shows
as ``"kind": "unparseable"`` lines); 2 when a path is missing or unreadable (after explaining the
others).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from chalicelib.parsing.events import parse_payload

EXIT_OK = 0
EXIT_UNREADABLE = 2


def main(argv: list[str]) -> int:
    """``argv`` is what follows ``mcd explain``."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse's --help / usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    status = EXIT_OK
    for name in args.files:
        payload = _read(name, sys.stderr)
        if payload is None:
            status = EXIT_UNREADABLE
            continue
        _print_items(payload, "<stdin>" if name == "-" else name, sys.stdout)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcd explain",
        description="Parse saved AWS payloads (SNS, EventBridge, CloudWatch Logs, CloudTrail, Config, ...) "
                    "and print one JSON object per normalised item.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="payload file; '-' reads stdin")
    return parser


def _read(name: str, err: TextIO) -> bytes | None:
    try:
        if name == "-":
            return sys.stdin.buffer.read()
        return Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        print(f"mcd explain: cannot read {name}: {reason}", file=err)
        return None


def _print_items(payload: bytes, source: str, out: TextIO) -> None:
    for item in parse_payload(payload, source):
        out.write(json.dumps(item.to_json(), ensure_ascii=False, default=str) + "\n")
    out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
