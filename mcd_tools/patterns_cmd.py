"""``mcd patterns [--settings FILE] [--json]``: print the delivery patterns for the active rules.

Prints the CloudWatch Logs subscription filter pattern for the trail's log group and the
EventBridge event patterns (one rule each), derived from ``direct_rules`` in a settings JSON file,
or from the default rules. See ``docs/direct-alerts.md`` for installing them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.patterns import CWL_MAX_PATTERN, cloudwatch_logs_filter, eventbridge_patterns
from chalicelib.core.rules import DirectRules
from chalicelib.core.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcd patterns",
        description="Print the CloudWatch Logs filter pattern and EventBridge patterns for direct alerts.",
    )
    parser.add_argument("--settings", metavar="FILE", help="settings JSON file (default: the built-in rules)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    return parser


def load_rules(path: str | None) -> DirectRules:
    """The rules of a settings file's ``direct_rules``, or the defaults when no file is given."""
    if path is None:
        return DirectRules()
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read settings file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"settings file {path} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigurationError(f"settings file {path} must hold a JSON object")
    return DirectRules.from_mapping(Settings.from_dict(document).direct_rules)


def render(rules: DirectRules) -> dict[str, Any]:
    pattern, notes = cloudwatch_logs_filter(rules)
    return {
        "cloudwatch_logs_filter_pattern": pattern,
        "cloudwatch_logs_notes": list(notes),
        "eventbridge_patterns": eventbridge_patterns(rules),
    }


def _write_text(out: TextIO, result: dict[str, Any]) -> None:
    pattern = result["cloudwatch_logs_filter_pattern"]
    size = f"{len(pattern)}/{CWL_MAX_PATTERN} characters"
    out.write(f"# CloudWatch Logs subscription filter pattern ({size})\n")
    out.write("# for the trail's log group, destination: the <app>-<stage>-cloudwatch_logs function\n")
    for note in result["cloudwatch_logs_notes"]:
        out.write(f"# wider than the rules: {note}\n")
    out.write((pattern or '""') + "\n\n")
    patterns = result["eventbridge_patterns"]
    out.write(f"# EventBridge event patterns: {len(patterns)} rule(s) on the default event bus, "
              "state ENABLED\n")
    out.write(json.dumps(patterns, indent=2) + "\n")


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        rules = load_rules(args.settings)
    except ConfigurationError as exc:
        err.write(f"mcd patterns: {exc}\n")
        return 2
    result = render(rules)
    if args.json:
        out.write(json.dumps(result, indent=2) + "\n")
    else:
        _write_text(out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
