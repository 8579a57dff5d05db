"""Size limits of a Slack message (kept below Slack's own) and the check every payload passes (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

LIMITS: dict[str, int] = {
    "header": 150,
    "section_text": 3000,
    "section_fields": 10,
    "field_text": 2000,
    "context_elements": 10,
    "context_text": 2000,
    "blocks": 50,
    "total_text": 10000,
    "fallback_text": 3000,
}


def _block_texts(block: Mapping[str, Any]) -> list[str]:
    texts = []
    text = block.get("text")
    if isinstance(text, Mapping):
        texts.append(str(text.get("text", "")))
    for item in [*(block.get("fields") or []), *(block.get("elements") or [])]:
        if isinstance(item, Mapping) and "text" in item:
            inner = item["text"]
            texts.append(str(inner.get("text", "")) if isinstance(inner, Mapping) else str(inner))
    return texts


def total_text(blocks: Iterable[Mapping[str, Any]]) -> int:
    """Characters of text in ``blocks`` (what Slack counts against its message size)."""
    return sum(len(t) for b in blocks for t in _block_texts(b))


def _header_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    problems = []
    text = str((block.get("text") or {}).get("text", ""))
    if not text or len(text) > LIMITS["header"]:
        problems.append(f"{where}: header text length {len(text)} not in 1..{LIMITS['header']}")
    if (block.get("text") or {}).get("type") != "plain_text":
        problems.append(f"{where}: header text must be plain_text")
    return problems


def _section_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    problems = []
    text = block.get("text")
    fields = block.get("fields") or []
    if not text and not fields:
        problems.append(f"{where}: section needs text or fields")
    if text and not 0 < len(str(text.get("text", ""))) <= LIMITS["section_text"]:
        problems.append(f"{where}: section text length {len(str(text.get('text', '')))}")
    if len(fields) > LIMITS["section_fields"]:
        problems.append(f"{where}: {len(fields)} fields > {LIMITS['section_fields']}")
    for number, field in enumerate(fields):
        if not 0 < len(str(field.get("text", ""))) <= LIMITS["field_text"]:
            problems.append(f"{where}: field {number} length {len(str(field.get('text', '')))}")
    return problems


def _context_problems(where: str, block: Mapping[str, Any]) -> list[str]:
    problems = []
    elements = block.get("elements") or []
    if not 0 < len(elements) <= LIMITS["context_elements"]:
        problems.append(f"{where}: {len(elements)} context elements")
    for number, element in enumerate(elements):
        if not 0 < len(str(element.get("text", ""))) <= LIMITS["context_text"]:
            problems.append(f"{where}: context element {number} length {len(str(element.get('text', '')))}")
    return problems


_CHECKS: dict[str, Callable[[str, Mapping[str, Any]], list[str]]] = {
    "header": _header_problems,
    "section": _section_problems,
    "context": _context_problems,
    "divider": lambda _where, _block: [],
}


def _block_problems(index: int, block: Mapping[str, Any]) -> list[str]:
    kind = block.get("type")
    where = f"block {index} ({kind})"
    check = _CHECKS.get(kind) if isinstance(kind, str) else None
    return check(where, block) if check else [f"{where}: unexpected block type"]


def _fallback_problems(text: Any) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        return ["text fallback missing or empty"]
    if len(text) > LIMITS["fallback_text"]:
        return [f"text fallback length {len(text)} > {LIMITS['fallback_text']}"]
    return []


def check_limits(payload: Mapping[str, Any]) -> list[str]:
    """Violations of ``LIMITS`` in a payload (empty when it is fine to send)."""
    problems = _fallback_problems(payload.get("text"))
    blocks = list(payload.get("blocks") or [])
    for attachment in payload.get("attachments") or []:
        blocks.extend(attachment.get("blocks") or [])
    if not blocks:
        problems.append("no blocks")
    if len(blocks) > LIMITS["blocks"]:
        problems.append(f"{len(blocks)} blocks > {LIMITS['blocks']}")
    for index, block in enumerate(blocks):
        problems.extend(_block_problems(index, block))
    total = total_text(blocks)
    if total > LIMITS["total_text"]:
        problems.append(f"total block text {total} > {LIMITS['total_text']}")
    return problems
