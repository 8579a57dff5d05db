"""Each function's IAM policy, generated from the AWS calls its code makes, on this stage's resources only.

Chalice's own generator reads app.py, gives every function one role, and grants each call on
``Resource: "*"``. This generator follows each handler instead:

1. **What the handler runs**: the stage modules its body imports (and ``alive``), and the stage modules
   those import, transitively (``chalicelib/stages``; the core is pure and the adapters sit behind ports).
2. **Which ports it uses**: ``deps.queue(NAME).send(...)``, ``deps.state.put(...)``,
   ``deps.archive.get_text(...)``, ``deps.lookups``, ``deps.secrets.read(...)``, ``deps.settings()``.
   A queue named by a variable stands for every queue the handler's modules name; a port object that is
   passed around rather than called stands for all of its methods. Over-approximation stays inside the
   stage's own resources.
3. **What each port method calls**: the boto3 operations in the adapter's method, its helpers and the
   module functions it calls (``PORTS``), mapped to IAM actions by Chalice's policy builder.
4. **On what**: the ARN patterns of ``RESOURCES``: this stage's queues, table, archive bucket, settings
   parameter and secrets under ``mcd/<stage>/``, in the account the role belongs to
   (``${aws:PrincipalAccount}``). ``"*"`` remains only where AWS has no narrower resource
   (``WILDCARD_REASONS``; docs/deployment.md, "Permissions").

Lambda itself acts with the role too: every function writes its own log group, and the asynchronous
handlers (SNS, EventBridge, CloudWatch Logs) send a failed event to the stage's async-failure queue.

    python -m mcd_tools.iam_policy            # write .chalice/policies/<stage>/<function>.json and point
                                              # .chalice/config.json at them, for every stage
    python -m mcd_tools.iam_policy --check    # exit 1 when a file is not what the code calls (tests do this)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
CHALICE_DIR = ROOT / ".chalice"
CONFIG = CHALICE_DIR / "config.json"
POLICY_DIR = "policies"
ACCOUNT = "${aws:PrincipalAccount}"
VERSION = "2012-10-17"

QUEUE_MODULE = "chalicelib.stages.shared.queues"
ASYNC_FAILED_QUEUE = "async_failed_queue"
ASYNC_TRIGGERS = frozenset({"on_sns_message", "on_cw_event", "lambda_function", "on_s3_event"})
"""Decorators whose events Lambda invokes asynchronously: a failed event goes to the on-failure destination."""


@dataclass(frozen=True)
class Port:
    """A ``StageDeps`` member, the adapter behind it, and the services that adapter's client speaks."""

    module: str
    owner: str
    services: tuple[str, ...]


PORTS: dict[str, Port] = {
    "queue": Port("chalicelib/adapters/queues.py", "Queue", ("sqs",)),
    "archive": Port("chalicelib/adapters/archive.py", "Archive", ("s3",)),
    "state": Port("chalicelib/adapters/state.py", "StateTable", ("dynamodb",)),
    "lookups": Port("chalicelib/adapters/cloudtrail.py", "LookupClient", ("cloudtrail", "sts")),
    "secrets": Port("chalicelib/adapters/secrets.py", "SecretReader", ("secretsmanager", "ssm")),
    "organization": Port("chalicelib/adapters/organizations.py", "OrganizationReader", ("organizations",)),
    "settings": Port("chalicelib/bootstrap.py", "Deps", ("ssm", "s3")),
}
SETTINGS_METHOD = "_read_settings_document"

WILDCARD_REASONS = {
    "cloudtrail:LookupEvents": "LookupEvents has no resource type: IAM accepts only \"*\" for it",
    **{f"organizations:{action}": ("the organisation's directory is read whole, from its root down (D32): no "
                                   "narrower resource would do, and the organisation's id is not known to the stage")
       for action in ("ListRoots", "ListAccountsForParent", "ListOrganizationalUnitsForParent")},
}


@dataclass(frozen=True, order=True)
class Use:
    """One port method a handler's code calls; ``target`` is the queue name, or ``"other"`` for an
    archive read from a bucket given by the caller (Config's oversized items)."""

    port: str
    method: str
    target: str = ""


# --- 1. what a handler runs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Handler:
    name: str
    trigger: str
    modules: frozenset[str]

    @property
    def asynchronous(self) -> bool:
        return self.trigger in ASYNC_TRIGGERS


def handlers(app_source: str | None = None) -> dict[str, Handler]:
    """Every function app.py declares (``@app.<trigger>``), with the stage modules its body reaches."""
    tree = ast.parse(app_source if app_source is not None else APP.read_text())
    imported = _module_level_imports(tree)
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and (trigger := _app_trigger(node)):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            modules = {imported[n] for n in names if n in imported} | set(_imports_in(node))
            found[node.name] = Handler(node.name, trigger, frozenset(m for m in modules if _is_stage(m)))
    return found


def _app_trigger(node: ast.FunctionDef) -> str:
    for decorator in node.decorator_list:
        call = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(call, ast.Attribute) and isinstance(call.value, ast.Name) and call.value.id == "app":
            return call.attr
    return ""


def _module_level_imports(tree: ast.Module) -> dict[str, str]:
    """Name → module for ``from chalicelib.x import name`` at the top of a module."""
    return {alias.asname or alias.name: node.module for node in tree.body if isinstance(node, ast.ImportFrom)
            and node.module for alias in node.names}


def _imports_in(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom) and child.module:
            yield child.module
        elif isinstance(child, ast.Import):
            yield from (alias.name for alias in child.names)


def _is_stage(module: str) -> bool:
    return module.startswith("chalicelib.stages.")


def _path(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


@cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def closure(modules: Iterable[str]) -> list[str]:
    """``modules`` and every stage module they import, transitively, sorted."""
    seen: set[str] = set()
    todo = [m for m in modules if _path(m).is_file()]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(m for m in _imports_in(_parsed(_path(module))) if _is_stage(m) and _path(m).is_file())
    return sorted(seen)


# --- 2. which ports it uses ------------------------------------------------------------------------


@cache
def queue_constants() -> dict[str, frozenset[str]]:
    """The names ``stages.shared.queues`` gives queues: ``SLACK_QUEUE`` → {"slack_queue"}, and a collection of
    them (``DEAD_LETTER_QUEUES``) → the queues in it."""
    from chalicelib.stage_config import QUEUES

    constants: dict[str, frozenset[str]] = {}
    for node in _parsed(_path(QUEUE_MODULE)).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        if isinstance(node.value, ast.Constant) and node.value.value in QUEUES:
            constants[node.targets[0].id] = frozenset({node.value.value})
        elif isinstance(node.value, (ast.Dict, ast.Tuple, ast.List, ast.Set)):
            named = [constants.get(n.id) for n in ast.walk(node.value) if isinstance(n, ast.Name)]
            if named and all(named):
                constants[node.targets[0].id] = frozenset().union(*named)
    return constants


def _named_queues(modules: Iterable[str]) -> set[str]:
    """Every queue the code of ``modules`` names (the queue module's own definitions aside)."""
    found: set[str] = set()
    for module in modules:
        tree = _parsed(_path(module))
        scopes = [n for n in tree.body if isinstance(n, ast.FunctionDef)] if module == QUEUE_MODULE else [tree]
        for scope in scopes:
            for node in ast.walk(scope):
                if isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
                    found.update(queue_constants().get(node.id if isinstance(node, ast.Name) else node.attr, ()))
    return found


@cache
def port_methods(port: str) -> frozenset[str]:
    """The public methods of the adapter behind ``port``."""
    spec = PORTS[port]
    owner = _class(_parsed(ROOT / spec.module), spec.owner)
    return frozenset(n.name for n in owner.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_"))


def uses(modules: Iterable[str]) -> set[Use]:
    """The port methods the code of ``modules`` calls."""
    modules = list(modules)
    trees = [_parsed(_path(m)) for m in modules]
    named_queues = _named_queues(modules)
    found: set[Use] = set()
    for tree in trees:
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "queue":
                queues = _queue_names(node, named_queues, _enclosing_function(node, parents), trees)
                found.update(Use("queue", m, q) for q in queues for m in _methods_on(node, parents, "queue"))
            elif isinstance(node, ast.Attribute) and node.attr in ("archive", "state", "lookups", "secrets",
                                                                   "organization"):
                for method in _methods_on(node, parents, node.attr):
                    found.add(Use(node.attr, method))
                    if node.attr == "archive" and method == "get_text" and _reads_other_bucket(node, parents):
                        found.add(Use("archive", method, "other"))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "settings" and not node.args):
                found.add(Use("settings", SETTINGS_METHOD))
    return found


def _queue_names(call: ast.Call, named: set[str], scope: ast.AST | None, trees: list[ast.Module]) -> set[str]:
    """The queues a ``.queue(arg)`` call may name.

    A constant names itself. A parameter of the enclosing function names what its callers pass (nothing,
    when no code reached calls it). Any other variable stands for every queue the code names.
    """
    arg = call.args[0] if call.args else None
    key = _name_of(arg)
    if key in queue_constants():
        return set(queue_constants()[key])
    if isinstance(arg, ast.Name) and isinstance(scope, ast.FunctionDef):
        parameters = [a.arg for a in scope.args.args]
        if arg.id in parameters:
            return _passed_queues(scope.name, parameters.index(arg.id), arg.id, trees, named)
    return set(named)


def _name_of(node: ast.AST | None) -> str:
    """``x`` for ``x`` and ``a.x``; ``""`` for anything else."""
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _passed_queues(function: str, position: int, keyword: str, trees: list[ast.Module],
                   named: set[str]) -> set[str]:
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and _name_of(node.func) == function):
                continue
            given = [node.args[position]] if len(node.args) > position else []
            given += [k.value for k in node.keywords if k.arg == keyword]
            for value in given:  # a variable passed on stands for any named queue
                found.update(queue_constants().get(_name_of(value), named))
    return found


def _methods_on(node: ast.expr, parents: dict[ast.AST, ast.AST], port: str) -> set[str]:
    """The methods called on the port object ``node`` yields: chained, or through the name it is bound to.

    An object used any other way (passed to a function, returned) stands for all its methods; reading a
    plain attribute (``deps.archive.bucket``) calls nothing.
    """
    methods = port_methods(port)
    parent = parents.get(node)
    if isinstance(parent, ast.Attribute):
        is_call = isinstance(parents.get(parent), ast.Call) and parents[parent].func is parent
        if parent.attr in methods:
            return {parent.attr} if is_call else set(methods)
        return set() if not is_call else set(methods)
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
        return _methods_on_name(parent.targets[0].id, _enclosing_function(parent, parents), parents, methods)
    return set(methods)


def _methods_on_name(name: str, scope: ast.AST | None, parents: dict[ast.AST, ast.AST],
                     methods: frozenset[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(scope) if scope is not None else ():
        if not (isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load)):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.attr in methods:
            found.add(parent.attr)
        elif not (isinstance(parent, ast.Attribute) and parent.attr not in methods):
            return set(methods)  # handed on: whatever receives it may call anything
    return found


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _reads_other_bucket(node: ast.expr, parents: dict[ast.AST, ast.AST]) -> bool:
    """``archive.get_text(key, bucket)``: a bucket chosen by the caller, not only the archive's own."""
    call = parents.get(parents.get(node))
    return isinstance(call, ast.Call) and (len(call.args) > 1 or any(k.arg == "bucket" for k in call.keywords))


# --- 3. what each port method calls -------------------------------------------------------------------


def _class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise LookupError(f"class {name} not found")


@cache
def _operations(service: str) -> frozenset[str]:
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return frozenset(xform_name(name) for name in model.operation_names)


@cache
def operations(port: str, method: str) -> frozenset[tuple[str, str]]:
    """The ``(service, operation)`` calls ``method`` of the adapter behind ``port`` makes, helpers included."""
    spec = PORTS[port]
    tree = _parsed(ROOT / spec.module)
    owner = _class(tree, spec.owner)
    members = {n.name: n for n in owner.body if isinstance(n, ast.FunctionDef)}
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)} | _imported_functions(tree)
    found: set[tuple[str, str]] = set()
    seen: set[str] = set()
    todo: list[ast.FunctionDef] = [members[method]]
    while todo:
        function = todo.pop()
        if function.name in seen:
            continue
        seen.add(function.name)
        for node in ast.walk(function):  # a helper counts when named, called or handed on (``self._call``)
            if isinstance(node, ast.Name) and node.id in functions:
                todo.append(functions[node.id])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                if node.attr in members:
                    todo.append(members[node.attr])
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                found.update(_service_call(node.func, spec.services))
    return frozenset(found)


def _imported_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Functions a module imports from chalicelib (``from chalicelib.adapters.archive import read_object``)."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib."):
            source = _path(node.module)
            body = _parsed(source).body if source.is_file() else []
            defined = {n.name: n for n in body if isinstance(n, ast.FunctionDef)}
            found.update({alias.asname or alias.name: defined[alias.name] for alias in node.names
                          if alias.name in defined})
    return found


def _service_call(callee: ast.Attribute, services: tuple[str, ...]) -> set[tuple[str, str]]:
    """``(service, operation)`` when ``x.op(...)`` is an operation of one of the port's services."""
    receiver = callee.value
    if isinstance(receiver, ast.Call) and receiver.args and isinstance(receiver.args[0], ast.Constant):
        named = receiver.args[0].value
        if named in services and callee.attr in _operations(named):
            return {(named, callee.attr)}
    return {(s, callee.attr) for s in services if callee.attr in _operations(s)}


# --- 4. on what ----------------------------------------------------------------------------------------


def resources(use: Use, service: str, stage: str) -> list[str]:
    """The ARN patterns of this stage's resources a ``use`` of ``service`` acts on."""
    from chalicelib.stage_config import QUEUES

    archive = f"arn:*:s3:::mcd-{stage}-archive-{ACCOUNT}-*"
    if use.port == "queue":
        return [f"arn:*:sqs:*:{ACCOUNT}:mcd-{stage}-{QUEUES[use.target]}"]
    if use.port == "state":
        return [f"arn:*:dynamodb:*:{ACCOUNT}:table/mcd-{stage}-state"]
    if use.port == "archive":
        # Config writes oversized items to its delivery bucket under AWSLogs/<account>/Config/ (any prefix).
        return ["arn:*:s3:::*/AWSLogs/*/Config/*"] if use.target == "other" else [f"{archive}/*"]
    if use.port == "lookups" and service == "sts":
        # Another account's lookup role (settings.lookup_role, any name): its trust policy admits only this
        # stage's lookup function (infra/region.yaml), which is what keeps anyone else out.
        return ["arn:*:iam::*:role/*"]
    if use.port == "secrets":
        return ([f"arn:*:secretsmanager:*:{ACCOUNT}:secret:mcd/{stage}/*"] if service == "secretsmanager"
                else [f"arn:*:ssm:*:{ACCOUNT}:parameter/mcd/{stage}/*"])
    if use.port == "settings":
        return ([f"arn:*:ssm:*:{ACCOUNT}:parameter/mcd/{stage}/settings"] if service == "ssm"
                else [f"{archive}/settings/*"])
    return ["*"]


@cache
def _actions(service: str, operation: str) -> tuple[str, ...]:
    """The IAM actions a call needs, as Chalice's policy builder maps them."""
    built = _policy_builder().build_policy_from_api_calls({service: {operation}})
    return tuple(sorted({a for s in built["Statement"]
                         for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}))


@cache
def _policy_builder() -> Any:
    from chalice.policy import PolicyBuilder

    return PolicyBuilder()


@cache
def function_uses(handler: Handler) -> frozenset[Use]:
    return frozenset(uses(closure(handler.modules)))


def policy(handler: Handler, stage: str) -> dict[str, Any]:
    """The policy document of ``handler``'s role in ``stage``."""
    grants: dict[tuple[str, ...], set[str]] = {}
    for use in sorted(function_uses(handler)):
        for service, operation in operations(use.port, use.method):
            for action in _actions(service, operation):
                grants.setdefault(tuple(resources(use, service, stage)), set()).add(action)
    log_group = f"arn:*:logs:*:{ACCOUNT}:log-group:/aws/lambda/mcd-{stage}-{handler.name}"
    grants.setdefault((f"{log_group}:*",), set()).update({"logs:CreateLogStream", "logs:PutLogEvents"})
    if handler.asynchronous and _has_async_failed_queue():
        async_queue = Use("queue", "send", ASYNC_FAILED_QUEUE)
        grants.setdefault(tuple(resources(async_queue, "sqs", stage)), set()).add("sqs:SendMessage")
    by_actions: dict[tuple[str, ...], list[str]] = {}
    for resources_, actions in grants.items():
        by_actions.setdefault(tuple(sorted(actions)), []).extend(resources_)
    ordered = sorted((tuple(sorted(set(r))), set(a)) for a, r in by_actions.items())
    ordered.sort(key=lambda grant: (sorted(grant[1])[0].split(":")[0], sorted(grant[1]), grant[0]))
    statements = [{"Sid": _sid(actions, number), "Effect": "Allow", "Action": sorted(actions),
                   "Resource": list(resources_) if len(resources_) > 1 else resources_[0]}
                  for number, (resources_, actions) in enumerate(ordered, 1)]
    return {"Version": VERSION, "Statement": statements}


def _has_async_failed_queue() -> bool:
    from chalicelib.stage_config import QUEUES

    return ASYNC_FAILED_QUEUE in QUEUES


def _sid(actions: set[str], number: int) -> str:
    """``Sqs2``: the service and the statement's place, unique within the policy as IAM requires."""
    services = sorted({action.split(":")[0] for action in actions})
    return "".join(service.title() for service in services) + str(number)


# --- files ----------------------------------------------------------------------------------------------


def stages(config: dict[str, Any] | None = None) -> list[str]:
    return sorted((config if config is not None else _config())["stages"])


def _config() -> dict[str, Any]:
    return json.loads(CONFIG.read_text())


def policy_file(stage: str, function: str) -> str:
    """The file ``iam_policy_file`` names, relative to ``.chalice``."""
    return f"{POLICY_DIR}/{stage}/{function}.json"


def rendered(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def wanted_files() -> dict[Path, str]:
    """Every policy file and its content, for every stage and function."""
    return {CHALICE_DIR / policy_file(stage, name): rendered(policy(handler, stage))
            for stage in stages() for name, handler in handlers().items()}


def wanted_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with Chalice's generator off and each function of each stage pointed at its file."""
    updated = json.loads(json.dumps(config))
    updated["autogen_policy"] = False
    for stage, settings in updated["stages"].items():
        functions = settings.setdefault("lambda_functions", {})
        for name in handlers():
            functions.setdefault(name, {})["iam_policy_file"] = policy_file(stage, name)
    return updated


def stale() -> list[str]:
    """What differs from what the code calls: files to (re)write or delete, and config entries."""
    wanted = wanted_files()
    found = [f"{p.relative_to(ROOT)} is not what the code calls" for p, text in wanted.items()
             if not p.is_file() or p.read_text() != text]
    found += [f"{p.relative_to(ROOT)} belongs to no function" for p in (CHALICE_DIR / POLICY_DIR).rglob("*.json")
              if p not in wanted]
    if wanted_config(_config()) != _config():
        found.append(".chalice/config.json does not point every function at its policy file")
    return found


def write() -> list[Path]:
    written = []
    for path, text in wanted_files().items():
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    wanted = wanted_files()
    for path in (CHALICE_DIR / POLICY_DIR).rglob("*.json"):
        if path not in wanted:
            path.unlink()
            written.append(path)
    config = _config()
    if wanted_config(config) != config:
        CONFIG.write_text(json.dumps(wanted_config(config), indent=2) + "\n")
        written.append(CONFIG)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcd_tools.iam_policy", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for line in problems:
            print(line)
        return 1 if problems else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
