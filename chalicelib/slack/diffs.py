"""What changed, as compact diff lines: permissions, policies, relationships and other properties (raw text; pure).

``format_property_change`` reads one entry of ``changed_properties``; what a security-group permission or a
policy *is* comes from ``chalicelib.core.policies``, the analysis severity uses too. Values are
event-sourced and may be anything: every value is shown as shortened one-line text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.core import policies
from chalicelib.core.outcomes import Outcome
from chalicelib.core.policies import HeldPolicy, Rule
from chalicelib.core.text import clip, compact_json, nonblank, one_line, text_of

_VALUE_CHARS = 120
_LINE_BUDGET = 240
_MAX_LEAVES = 200
_MAX_DEPTH = 8


def value_text(value: Any, limit: int = _VALUE_CHARS) -> str:
    """A property value, compact and shortened (raw text)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return clip(one_line(value), limit) if value else '""'
    if isinstance(value, Mapping):
        low = policies.lower_keys(value)
        if set(low) == {"key", "value"}:
            return clip(one_line(f"{text_of(low['key'])}={text_of(low['value'])}"), limit)
        if "policyarn" in low:
            name = text_of(low.get("policyname"))
            arn = text_of(low["policyarn"])
            return clip(one_line(f"{name} ({arn})" if name else arn), limit)
    return clip(one_line(compact_json(value)), limit)


# --------------------------------------------------------------------------------------------
# Security-group permissions


def _rule_lines(sign: str, rules: list[Rule], direction: str) -> list[str]:
    grouped: dict[str, list[str]] = {}
    for ports, source, description in rules:
        shown = clip(one_line(source), 60) + (f" ({clip(one_line(description), 40)})" if description else "")
        grouped.setdefault(ports, []).append(shown)
    lines = []
    for ports, sources in grouped.items():
        more = f" and {len(sources) - 5} more" if len(sources) > 5 else ""
        lines.append(f"{sign} {clip(one_line(ports), 40)} {direction} {', '.join(sources[:5])}{more}")
    return lines


def _permission_lines(path: str, previous: Any, updated: Any) -> list[str]:
    direction = "to" if "egress" in path.lower() else "from"
    added, removed, renamed = policies.rule_diff(previous, updated)
    lines = _rule_lines("+", added, direction) + _rule_lines("−", removed, direction)
    for old, new in renamed[:5]:
        lines.append(
            f"~ {old.ports} {clip(one_line(old.source), 60)} description "
            f"{value_text(old.description or None)} → {value_text(new.description or None)}"
        )
    return lines or ["updated (no rule change)"]


# --------------------------------------------------------------------------------------------
# Policies


def _statement_text(statement: Mapping[str, Any]) -> str:
    low = policies.lower_keys(statement)
    parts = [text_of(low.get("effect")) or "?"]
    if "principal" in low:
        parts.append(policies.principal_text(low["principal"]))
    for key, prefix in (("action", ""), ("notaction", "not "), ("resource", "on "), ("notresource", "not on ")):
        if key in low:
            values = [text_of(v) for v in policies.as_list(low[key])]
            more = f" +{len(values) - 3}" if len(values) > 3 else ""
            parts.append(prefix + ",".join(values[:3]) + more)
    if low.get("condition"):
        parts.append("(conditional)")
    return clip(one_line(" ".join(parts)), 160)


def _policy_summary(policy: Mapping[str, Any], budget: int = 160) -> str:
    """Statements as ``Effect principal actions on resources`` within ``budget``, then ``+N more``."""
    statements = policies.statements(policy)
    if not statements:
        return "(no statements)"
    texts = [_statement_text(s) for s in statements[:20]]
    shown = [clip(texts[0], budget - 25)]
    for text in texts[1:]:
        if sum(len(t) + 2 for t in shown) + len(text) > budget - 25:
            break
        shown.append(text)
    rest = len(statements) - len(shown)
    return "; ".join(shown) + (f"; +{rest} more statements" if rest else "")


def _policy_label(held: HeldPolicy | None) -> str:
    name = held.name if held else None
    return f"{clip(one_line(name), 60)}: " if name else ""


def _policy_lines(old: HeldPolicy | None, new: HeldPolicy | None) -> list[str]:
    label = _policy_label(new or old)
    if new and new.policy is not None:
        verb = "updated" if old and old.policy is not None else "+"
        return [f"{verb} {label}{_policy_summary(new.policy)}"]
    if old and old.policy is not None:
        return [f"− {label}{_policy_summary(old.policy)}"]
    return [f"{label}policy changed"]


# --------------------------------------------------------------------------------------------
# Relationships and other properties


def _relationship_text(value: Any) -> str:
    if not isinstance(value, Mapping):
        return value_text(value)
    low = policies.lower_keys(value)
    name = text_of(low.get("name") or low.get("relationshipname")).strip()
    rid, rname = nonblank(low.get("resourceid")), nonblank(low.get("resourcename"))
    target = rid or rname or text_of(low.get("resourcetype")) or "?"
    if rid and rname and rid != rname:
        target = f"{rid} ({rname})"
    return one_line(f"{name} {target}".strip())


def _relationship_lines(previous: Any, updated: Any) -> list[str]:
    if previous is None and updated is not None:
        return [f"+ {_relationship_text(updated)}"]
    if updated is None and previous is not None:
        return [f"− {_relationship_text(previous)}"]
    return [f"{_relationship_text(previous)} → {_relationship_text(updated)}"]


def _children(value: Any) -> Iterator[tuple[Any, Any]] | None:
    """(key, value) pairs of a non-empty mapping or list; ``None`` for a leaf."""
    if isinstance(value, Mapping) and value:
        return iter(value.items())
    if isinstance(value, list) and value:
        return enumerate(value)
    return None


def _flatten(value: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    """Leaf values of nested dicts/lists keyed by dotted sub-path (at most 200 leaves, depth 8)."""
    if len(out) >= _MAX_LEAVES:
        return
    children = _children(value) if depth < _MAX_DEPTH else None
    if children is None:
        out[prefix] = value
        return
    for key, inner in children:
        _flatten(inner, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)


def _same(left: Any, right: Any) -> bool:
    try:
        return bool(left == right)
    except RecursionError:
        return compact_json(left) == compact_json(right)


def _container_diff_lines(previous: Any, updated: Any) -> list[str]:
    """Sub-path diff of two containers: ``.key: a → b``, ``.key: + v``, ``.key: − v``."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    _flatten(previous, "", old)
    _flatten(updated, "", new)
    lines = []
    for key in [*new, *(k for k in old if k not in new)]:
        if key not in old:
            lines.append(f".{key}: + {value_text(new[key], 80)}")
        elif key not in new:
            lines.append(f".{key}: − {value_text(old[key], 80)}")
        elif not _same(old[key], new[key]):
            lines.append(f".{key}: {value_text(old[key], 60)} → {value_text(new[key], 60)}")
    return lines or ["updated"]


def _generic_lines(previous: Any, updated: Any) -> list[str]:
    if previous is None and updated is not None:
        return [f"+ {value_text(updated)}"]
    if updated is None and previous is not None:
        return [f"− {value_text(previous)}"]
    if isinstance(previous, (Mapping, list)) and isinstance(updated, (Mapping, list)):
        return _container_diff_lines(previous, updated)
    return [f"{value_text(previous, 70)} → {value_text(updated, 70)}"]


# --------------------------------------------------------------------------------------------
# One property, one outcome


def _body_lines(path: str, previous: Any, updated: Any) -> list[str]:
    if policies.PERMISSION_PATH.search(path) or policies.is_permission(previous) or policies.is_permission(updated):
        return _permission_lines(path, previous, updated)
    old, new = policies.policy_of(previous), policies.policy_of(updated)
    if old is not None or new is not None:
        return _policy_lines(old, new)
    if path.lower().startswith("relationships"):
        return _relationship_lines(previous, updated)
    return _generic_lines(previous, updated)


def format_property_change(change: Mapping[str, Any]) -> list[str]:
    """Compact raw-text lines for one changed property (``path``, ``change_type``, ``previous``, ``updated``).

    Examples: ``Configuration.IpPermissions.0: + tcp 22 from 0.0.0.0/0``, ``Tags.env: prod → dev``,
    ``Relationships.0: − Is associated with Instance i-0f0d…``,
    ``SupplementaryConfiguration.BucketPolicy: updated Allow everyone (*) s3:GetObject on …``.
    Sub-path lines of a container diff are written ``Path.sub.key: a → b``.
    """
    path = clip(one_line(change.get("path")), 100) or "(property)"
    body = _body_lines(path, change.get("previous"), change.get("updated"))
    return [clip(f"{path}{line}" if line.startswith(".") else f"{path}: {line}", _LINE_BUDGET) for line in body]


def diff_lines(outcome: Outcome, limit: int = 1000) -> list[str]:
    """All diff lines of an outcome (at most ``limit`` lines are produced)."""
    lines: list[str] = []
    for change in outcome.changed_properties:
        if len(lines) >= limit:
            break
        lines.extend(format_property_change(change))
    return lines
