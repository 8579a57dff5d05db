"""Delivery patterns for direct alerts: what EventBridge and CloudWatch Logs should send us (pure).

Both patterns are derived from the same ``DirectRules`` the Lambda applies, and each selects *at
least* every record the rules select (plus console sign-ins). Where a service's pattern language
cannot say exactly what the rules say, the pattern is made wider, never narrower, and the Lambda's
own check (``chalicelib.core.rules``) drops the extra records. Where each one is wider:

Tamper protection (``direct_rules.tamper``, on by default) selects any write call that names one of
the detector's resources, whatever its name or source; neither language can look for a value anywhere
in a request, so with it on both patterns send every write call (EventBridge: every API call, which a
rule in state ``ENABLED`` receives only for writes; CloudWatch Logs: every call whose name is not
read-only), and the names, sources and identity types are applied by the Lambda. This is what the
deployed app's own EventBridge rule does anyway.

EventBridge (``eventbridge_patterns``)
  * ``exclude`` globs, the read-only name prefixes and ``include_errors: false`` are not in the
    pattern: an event pattern cannot AND two conditions on one field, and ``anything-but`` takes a
    single prefix. Read-only calls are not delivered anyway while the rule's state is ``ENABLED``
    (only ``ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`` receives Describe/Get/List calls).
  * The sign-in pattern takes every sign-in event (ConsoleLogin only when ``signin.root`` is off).

CloudWatch Logs (``cloudwatch_logs_filter_pattern``)
  * A JSON filter value may have ``*`` only at its start and/or end (``Ev*ent`` is the literal text
    ``Ev*ent``), so an include glob with an inner ``*`` (``Create*Policy``) becomes
    ``starts with Create AND ends with Policy`` (and ``*contains*`` for inner pieces): wider.
    Exclude globs with an inner ``*`` are left out. ``include_errors: false`` is left out.
  * A filter pattern is at most 1024 characters. When the exact pattern is longer, it is written
    without optional spaces, then without the exclude clauses, then without the read-only clauses,
    then without event names; as a last resort the empty pattern (every record).
  * The sign-in clause takes every ``signin.amazonaws.com`` record (ConsoleLogin only when
    ``signin.root`` is off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chalicelib.core.calls import COMMON_READ_PREFIXES
from chalicelib.core.rules import CONSOLE_LOGIN, SIGNIN_SOURCE, DirectRules

CWL_MAX_PATTERN = 1024
EVENTBRIDGE_MAX_PATTERN = 2048

API_CALL_DETAIL_TYPE = "AWS API Call via CloudTrail"
SIGNIN_DETAIL_TYPE = "AWS Console Sign In via CloudTrail"

_TAMPER_NOTE = ("tamper protection is on: every write call is sent (any may name one of the detector's "
                "resources); the Lambda applies the names")

# Matches no CloudTrail record (every record has an eventName): the rules select nothing.
CWL_NOTHING = "{ $.eventName NOT EXISTS }"


# --- glob translation --------------------------------------------------------------------------


def _pieces(glob: str) -> list[str]:
    return glob.split("*")


def cwl_values(glob: str) -> tuple[tuple[str, ...], bool]:
    """CloudWatch Logs values whose conjunction selects at least ``glob``, and whether exactly.

    ``()`` means no condition (the glob is ``*``).
    """
    parts = _pieces(glob)
    if len(parts) == 1:
        return (glob,), True
    if glob == "*":
        return (), True
    if len(parts) == 2 and (not parts[0] or not parts[1]):
        return (glob,), True  # "A*" or "*A"
    if len(parts) == 3 and not parts[0] and not parts[2]:
        return (glob,), True  # "*A*"
    values = []
    if parts[0]:
        values.append(parts[0] + "*")
    if parts[-1]:
        values.append("*" + parts[-1])
    values.extend(f"*{inner}*" for inner in parts[1:-1] if inner)
    return tuple(dict.fromkeys(values)), False


def eventbridge_matcher(glob: str) -> Any:
    """The EventBridge matcher for one glob: an exact string, ``prefix``, ``suffix`` or ``wildcard``."""
    parts = _pieces(glob)
    if len(parts) == 1:
        return glob
    if len(parts) == 2 and not parts[0]:
        return {"suffix": parts[1]}
    if len(parts) == 2 and not parts[1]:
        return {"prefix": parts[0]}
    return {"wildcard": glob}


# --- CloudWatch Logs ---------------------------------------------------------------------------

# ("cmp", selector, op, value), or (op, children) with op "&&" or "||".
Expr = tuple[Any, ...]


def _cmp(selector: str, op: str, value: str) -> Expr:
    return ("cmp", selector, op, value)


def _any(children: list[Expr]) -> Expr:
    return children[0] if len(children) == 1 else ("||", children)


def _all(children: list[Expr]) -> Expr:
    return children[0] if len(children) == 1 else ("&&", children)


def _render(expr: Expr, compact: bool) -> str:
    if expr[0] == "cmp":
        _, selector, op, value = expr
        if op == "NOT EXISTS":
            return f"{selector} NOT EXISTS"
        return f'{selector}{op}"{value}"' if compact else f'{selector} {op} "{value}"'
    op, children = expr
    joiner = op if compact else f" {op} "
    return joiner.join(f"({_render(child, compact)})" for child in children)


@dataclass(frozen=True)
class _Precision:
    names: bool = True
    read_only: bool = True
    excludes: bool = True
    identity_types: bool = True
    event_sources: bool = True


# From the exact pattern to ever wider ones, tried in order until one fits in 1024 characters.
_LADDER = (
    (_Precision(), ()),
    (_Precision(excludes=False), ("exclude globs are not in the pattern",)),
    (_Precision(excludes=False, read_only=False),
     ("exclude globs are not in the pattern", "read-only names are not excluded by the pattern")),
    (_Precision(excludes=False, read_only=False, names=False),
     ("event names are not in the pattern (too long): every call from the chosen sources/identities",)),
    (_Precision(excludes=False, read_only=False, names=False, identity_types=False),
     ("event names and identity types are not in the pattern (too long)",)),
)


def _signin_expr(rules: DirectRules) -> Expr | None:
    if not rules.signin_enabled:
        return None
    if rules.signin_root:
        return _cmp("$.eventSource", "=", SIGNIN_SOURCE)
    return _cmp("$.eventName", "=", CONSOLE_LOGIN)


def _api_selects_nothing(rules: DirectRules) -> bool:
    return not rules.tamper and (not rules.include or "*" in rules.exclude)


def _not_read_only() -> list[Expr]:
    return [_cmp("$.eventName", "!=", prefix + "*") for prefix in COMMON_READ_PREFIXES]


def _api_expr(rules: DirectRules, precision: _Precision) -> Expr | None:
    """The API-call clause; ``None`` when it has no condition left (every record)."""
    if rules.tamper:  # any write may name one of the detector's resources: every write call
        return _all(_not_read_only()) if precision.read_only else None
    clauses: list[Expr] = []
    if precision.names and "*" not in rules.include:
        alternatives = []
        for glob in rules.include:
            values, _exact = cwl_values(glob)
            alternatives.append(_all([_cmp("$.eventName", "=", v) for v in values]))
        clauses.append(_any(alternatives))
    if precision.event_sources and rules.event_sources:
        clauses.append(_any([_cmp("$.eventSource", "=", s) for s in rules.event_sources]))
    if precision.identity_types and rules.identity_types:
        clauses.append(_any([_cmp("$.userIdentity.type", "=", t) for t in rules.identity_types]))
    if clauses and precision.read_only:
        clauses.extend(_not_read_only())
    if clauses and precision.excludes:
        for glob in rules.exclude:
            values, exact = cwl_values(glob)
            if exact and len(values) == 1:  # a wider exclusion would drop records the rules select
                clauses.append(_cmp("$.eventName", "!=", values[0]))
    return _all(clauses) if clauses else None


def _cwl_candidates(rules: DirectRules) -> list[tuple[str, tuple[str, ...]]]:
    signin = _signin_expr(rules)
    if _api_selects_nothing(rules):
        return [(CWL_NOTHING if signin is None else "{ " + _render(signin, False) + " }", ())]
    inexact = [g for g in rules.include if g != "*" and not cwl_values(g)[1]]
    candidates = []
    for precision, notes in _LADDER:
        api = _api_expr(rules, precision)
        if api is None:
            break  # no condition left: the pattern is every record
        if rules.tamper:
            notes = (*notes, _TAMPER_NOTE)
        elif precision.names and inexact:
            notes = (*notes, "globs with an inner '*' are widened: " + ", ".join(inexact))
        expr = api if signin is None else _any([signin, api])
        candidates.append(("{ " + _render(expr, False) + " }", notes))
        candidates.append(("{" + _render(expr, True) + "}", notes))
    return candidates


def cloudwatch_logs_filter(rules: DirectRules) -> tuple[str, tuple[str, ...]]:
    """The subscription filter pattern, and notes on where it is wider than the rules."""
    for pattern, notes in _cwl_candidates(rules):
        if len(pattern) <= CWL_MAX_PATTERN:
            return pattern, notes
    return "", ("the rules do not fit a 1024-character filter: the empty pattern sends every record",)


def cloudwatch_logs_filter_pattern(rules: DirectRules) -> str:
    """A CloudWatch Logs JSON filter pattern selecting at least the rules' records and sign-ins."""
    return cloudwatch_logs_filter(rules)[0]


# --- EventBridge -------------------------------------------------------------------------------


def _size(pattern: dict[str, Any]) -> int:
    return len(json.dumps(pattern, separators=(",", ":")))


def _api_pattern(rules: DirectRules, names: list[Any] | None) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if names is not None:
        detail["eventName"] = names
    if rules.event_sources and not rules.tamper:
        detail["eventSource"] = list(rules.event_sources)
    if rules.identity_types and not rules.tamper:
        detail["userIdentity"] = {"type": list(rules.identity_types)}
    # Only AWS can put events whose source starts "aws.": this keeps forged events out.
    pattern: dict[str, Any] = {"source": [{"prefix": "aws."}], "detail-type": [API_CALL_DETAIL_TYPE]}
    if detail:
        pattern["detail"] = detail
    return pattern


def _api_patterns(rules: DirectRules) -> list[dict[str, Any]]:
    if _api_selects_nothing(rules):
        return []
    if "*" in rules.include or rules.tamper:
        return [_api_pattern(rules, None)]
    matchers = [eventbridge_matcher(glob) for glob in rules.include]
    patterns: list[dict[str, Any]] = []
    chunk: list[Any] = []
    for matcher in matchers:  # one rule per chunk when the names do not fit one pattern
        if chunk and _size(_api_pattern(rules, [*chunk, matcher])) > EVENTBRIDGE_MAX_PATTERN:
            patterns.append(_api_pattern(rules, chunk))
            chunk = []
        chunk.append(matcher)
    patterns.append(_api_pattern(rules, chunk))
    return patterns


def _signin_pattern(rules: DirectRules) -> dict[str, Any] | None:
    if not rules.signin_enabled:
        return None
    pattern: dict[str, Any] = {"source": ["aws.signin"], "detail-type": [SIGNIN_DETAIL_TYPE]}
    if not rules.signin_root:
        pattern["detail"] = {"eventName": [CONSOLE_LOGIN]}
    return pattern


def eventbridge_patterns(rules: DirectRules) -> list[dict[str, Any]]:
    """EventBridge event patterns, one rule each: API calls (possibly in chunks), then sign-ins."""
    patterns = _api_patterns(rules)
    signin = _signin_pattern(rules)
    if signin is not None:
        patterns.append(signin)
    return patterns
