"""Compare the AWS calls the deployed code makes with the per-function IAM policies ``mcd_tools.iam_policy`` writes.

Each function's policy (``.chalice/policies/<stage>/<function>.json``) is generated from the calls its
handler's code reaches. Two views of "the calls the code makes" are checked against the policies:

* statically (``static_calls``): every ``<client>.<operation>(`` in app.py and chalicelib, where
  ``<operation>`` is an operation of a service the code creates a client for. The service is the literal
  in a ``client("<service>")`` receiver, or else the only such service that has an operation of that
  name. Together the functions' policies must grant exactly these calls' actions: none missing, none
  that no code performs (``tests/tools/test_iam_policy.py``).
* at run time: conftest records every AWS operation that app or chalicelib code performs during the
  suite, and which handler of app.py it ran under. When the whole suite ran, the session's end checks
  that each handler's policy grants what it did, and that the static view saw every call (under
  pytest-xdist each worker writes what it recorded to ``CALLS_DIR`` and the controller checks the union).
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
LAMBDA_ADDS = {"logs:CreateLogStream", "logs:PutLogEvents"}
"""Granted for Lambda itself (the function's logs), not for a call in the code."""
DEPLOYED_CODE = (ROOT / "app.py", ROOT / "chalicelib")
STAGE = "prod"
ANY_HANDLER = ""


def _actions(policy: dict) -> set[str]:
    found = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found - LAMBDA_ADDS


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


@cache
def granted() -> dict[str, frozenset[str]]:
    """Each function's granted actions in the generated policies (Lambda's own log actions aside)."""
    from mcd_tools import iam_policy

    return {name: frozenset(_actions(iam_policy.policy(handler, STAGE)))
            for name, handler in iam_policy.handlers().items()}


def generated_actions() -> set[str]:
    """Every action some function's policy grants."""
    return set().union(*granted().values())


def problems(recorded: Iterable[tuple[str, str]], what: str = "in the suite") -> list[str]:
    """What is missing from, or extra in, the functions' policies taken together (empty when they agree)."""
    needed = needed_actions(recorded)
    generated = generated_actions()
    found = []
    if needed - generated:
        found.append(f"no function's policy grants these calls (see mcd_tools/iam_policy.py): "
                     f"{sorted(needed - generated)}")
    if generated - needed:
        found.append(f"the policies grant actions no code performed {what}: {sorted(generated - needed)}")
    return found


def handler_problems(recorded: dict[str, set[tuple[str, str]]]) -> list[str]:
    """Calls a handler made at run time that its own policy does not grant."""
    found = []
    for handler, calls in sorted(recorded.items()):
        if handler == ANY_HANDLER:
            continue
        missing = needed_actions(calls) - granted().get(handler, frozenset())
        if missing:
            found.append(f"{handler} called {sorted(missing)}, which its policy does not grant "
                         "(mcd_tools/iam_policy.py cannot see how its code reaches them)")
    return found


# --- the static view -----------------------------------------------------------------------------


def deployed_sources() -> Iterator[tuple[Path, ast.Module]]:
    """app.py and every module of chalicelib, parsed."""
    for path in (DEPLOYED_CODE[0], *sorted(DEPLOYED_CODE[1].rglob("*.py"))):
        yield path, ast.parse(path.read_text(), str(path))


def _code(tree: ast.Module) -> Iterator[ast.AST]:
    yield from ast.walk(tree)


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
    """The ``(service, operation)`` calls in ``trees``, and the calls whose service is unclear."""
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


Recorded = set[tuple[str, str, str]]
"""``(handler, service, operation)``: the handler of app.py the call ran under (``ANY_HANDLER`` if none)."""


def runtime_problems(recorded: Recorded) -> list[str]:
    """What the calls recorded during a whole suite say: the policies must match, each handler's must grant
    what it did, and the static view must see every call."""
    from botocore import xform_name

    calls = {(service, operation) for _, service, operation in recorded}
    by_handler: dict[str, set[tuple[str, str]]] = {}
    for handler, service, operation in recorded:
        by_handler.setdefault(handler, set()).add((service, operation))
    found = problems(calls) + handler_problems(by_handler)
    static, _ = static_calls()
    unseen = sorted(f"{s}:{xform_name(o)}" for s, o in calls if (s, xform_name(o)) not in static)
    if unseen:
        found.append(f"calls made at run time that the static scan (tests/policy_coverage.py) does not see: {unseen}")
    return found


def save(worker: str, recorded: Recorded) -> None:
    CALLS_DIR.mkdir(parents=True, exist_ok=True)
    (CALLS_DIR / f"{worker}.json").write_text(json.dumps(sorted(recorded)))


def load_all() -> Recorded:
    recorded: Recorded = set()
    for path in CALLS_DIR.glob("*.json"):
        recorded.update((handler, service, operation) for handler, service, operation in json.loads(path.read_text()))
    return recorded


def clear() -> None:
    for path in CALLS_DIR.glob("*.json"):
        path.unlink()
