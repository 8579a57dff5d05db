"""Compare the AWS calls the deployed code makes with the IAM policy Chalice generates from app.py.

Chalice's policy generator reads only app.py, so app.py carries a manifest of the calls chalicelib makes
(the function ``MANIFEST``, called only under ``if TYPE_CHECKING:``). Two views of "the calls the code
makes" are checked against it:

* statically (``static_calls``): every ``<client>.<operation>(`` in app.py (outside the manifest) and
  chalicelib, where ``<operation>`` is an operation of a service the code creates a client for. The
  service is the literal in a ``client("<service>")`` receiver, or else the only such service that has
  an operation of that name. This needs no test to have run first (``tests/test_iam_policy.py``).
* at run time: conftest records every AWS operation that app or chalicelib code performs during the
  suite. When the whole suite ran, the session's end checks the recorded calls against the policy and
  against the static view (under pytest-xdist each worker writes what it recorded to ``CALLS_DIR`` and
  the controller checks the union), so this too never depends on which test runs last.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CALLS_DIR = ROOT / ".pytest_cache" / "mcd-aws-calls"
CHALICE_ADDS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
DEPLOYED_CODE = (ROOT / "app.py", ROOT / "chalicelib")


def _actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found - CHALICE_ADDS


@cache
def _policy_builder() -> Any:
    from chalice.policy import PolicyBuilder

    return PolicyBuilder()


def needed_actions(calls: Iterable[tuple[str, str]]) -> set[str]:
    """The IAM actions ``(service, operation)`` calls need, as Chalice's policy builder maps them."""
    from botocore import xform_name

    by_service: dict[str, set[str]] = {}
    for service, operation in calls:
        by_service.setdefault(service, set()).add(xform_name(operation))
    return _actions(_policy_builder().build_policy_from_api_calls(by_service))


def generated_actions() -> set[str]:
    """The actions of the policy ``chalice package`` generates from app.py (its own log actions aside)."""
    return set(_generated_actions(ROOT / "app.py", (ROOT / "app.py").stat().st_mtime_ns))


@cache
def _generated_actions(app: Path, _version: int) -> frozenset[str]:
    from chalice.policy import policy_from_source_code

    return frozenset(_actions(policy_from_source_code(app.read_text())))


def problems(recorded: Iterable[tuple[str, str]], what: str = "in the suite") -> list[str]:
    """What is missing from, or extra in, the generated policy (empty when they agree)."""
    needed = needed_actions(recorded)
    generated = generated_actions()
    found = []
    if needed - generated:
        found.append(f"add these calls to the IAM manifest in app.py: {sorted(needed - generated)}")
    if generated - needed:
        found.append(f"the IAM manifest grants actions no code performed {what}: {sorted(generated - needed)}")
    return found


# --- the static view -----------------------------------------------------------------------------


def deployed_sources() -> Iterator[tuple[Path, ast.Module]]:
    """app.py and every module of chalicelib, parsed."""
    for path in (DEPLOYED_CODE[0], *sorted(DEPLOYED_CODE[1].rglob("*.py"))):
        yield path, ast.parse(path.read_text(), str(path))


MANIFEST = "aws_calls_made_in_chalicelib"


def _code(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node of a module but those of its IAM manifest (the top-level function ``MANIFEST``)."""
    for statement in tree.body:
        if not _is_manifest(statement):
            yield from ast.walk(statement)


def _is_manifest(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef) and node.name == MANIFEST


def _client_literal(node: ast.expr) -> str | None:
    """``"sqs"`` for ``client("sqs")``, ``x.client("sqs", region)`` or ``self._client("sqs")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    first = node.args[0]
    if name.lstrip("_").endswith("client") and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


@cache
def _operations(service: str) -> frozenset[str]:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return frozenset(xform_name(name) for name in model.operation_names)


def scan(trees: Iterable[tuple[Path, ast.Module]]) -> tuple[set[tuple[str, str]], list[str]]:
    """The ``(service, operation)`` calls in ``trees`` (manifests aside), and the calls whose service is unclear."""
    trees = list(trees)
    services = {s for _, tree in trees for node in _code(tree) if (s := _client_literal(node))}
    calls: set[tuple[str, str]] = set()
    unclear: list[str] = []
    for path, tree in trees:
        for node in _code(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            operation = node.func.attr
            named = _client_literal(node.func.value)
            candidates = [named] if named else sorted(s for s in services if operation in _operations(s))
            if named and operation not in _operations(named):
                continue  # a client's own helpers (get_paginator, meta...)
            if len(candidates) == 1:
                calls.add((candidates[0], operation))
            elif candidates:
                unclear.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{operation}() is an operation of "
                               f"{', '.join(candidates)}: call it on client(\"<service>\") so the service is clear")
    return calls, unclear


def static_calls() -> tuple[set[tuple[str, str]], list[str]]:
    """The calls of the deployed code (scanned once per run), and those whose service is unclear."""
    calls, unclear = _static_calls()
    return set(calls), list(unclear)


@cache
def _static_calls() -> tuple[frozenset[tuple[str, str]], tuple[str, ...]]:
    calls, unclear = scan(deployed_sources())
    return frozenset(calls), tuple(unclear)


# --- the runtime view under pytest-xdist ---------------------------------------------------------


def runtime_problems(recorded: set[tuple[str, str]]) -> list[str]:
    """What the calls recorded during a whole suite say: the policy must match, the static view must see them."""
    from botocore import xform_name

    found = problems(recorded)
    static, _ = static_calls()
    unseen = sorted(f"{s}:{xform_name(o)}" for s, o in recorded if (s, xform_name(o)) not in static)
    if unseen:
        found.append(f"calls made at run time that the static scan (tests/policy_coverage.py) does not see: {unseen}")
    return found


def save(worker: str, recorded: set[tuple[str, str]]) -> None:
    CALLS_DIR.mkdir(parents=True, exist_ok=True)
    (CALLS_DIR / f"{worker}.json").write_text(json.dumps(sorted(recorded)))


def load_all() -> set[tuple[str, str]]:
    recorded: set[tuple[str, str]] = set()
    for path in CALLS_DIR.glob("*.json"):
        recorded.update((service, operation) for service, operation in json.loads(path.read_text()))
    return recorded


def clear() -> None:
    for path in CALLS_DIR.glob("*.json"):
        path.unlink()
