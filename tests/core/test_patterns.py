"""Delivery patterns: they select at least what the rules select, in each service's real syntax.

EventBridge patterns are evaluated with moto's implementation (``moto.events.models.EventPattern``),
which supports the operators emitted here (exact strings, ``prefix``, ``suffix``, ``wildcard``,
nested ``detail`` fields); ``test_moto_supports_the_operators_we_emit`` pins that. CloudWatch Logs
filter patterns are evaluated by ``cwl_matches`` below, a small evaluator of the subset of the JSON
filter syntax ``chalicelib.core.patterns`` emits, written from the CloudWatch Logs documentation: ``&&``
binds tighter than ``||``, parentheses group, ``=``/``!=`` compare a string at a ``$.a.b`` selector,
and ``*`` is a wildcard only at the start or end of a value (``Ev*ent`` is literal).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern
from seed_rules import SEED_001_RULES, SEED_002_RULES

from chalicelib.core.model import TrailEvent
from chalicelib.core.patterns import (
    API_CALL_DETAIL_TYPE,
    CWL_MAX_PATTERN,
    CWL_NOTHING,
    EVENTBRIDGE_MAX_PATTERN,
    SIGNIN_DETAIL_TYPE,
    cloudwatch_logs_filter,
    cloudwatch_logs_filter_pattern,
    cwl_values,
    eventbridge_matcher,
    eventbridge_patterns,
)
from chalicelib.core.rules import DirectRules, glob_matches, is_sensitive_call, signin_alert
from chalicelib.core.settings import Settings
from chalicelib.parsing.cloudtrail import parse_record

ACCOUNT = "587402196633"


# --- a CloudWatch Logs JSON filter evaluator (the subset we emit) ------------------------------

_TOKEN = re.compile(r'\s*(\|\||&&|\(|\)|!=|=|NOT EXISTS|"[^"]*"|\$[A-Za-z0-9_.\-\[\]]+)')


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ValueError(f"cannot read filter pattern at {text[pos : pos + 20]!r}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _value_matches(value: str, actual: Any) -> bool:
    if not isinstance(actual, str):
        return False
    start, end = value.startswith("*"), value.endswith("*") and len(value) > 1
    core = value[1 if start else 0 : len(value) - 1 if end else len(value)]
    if start and end:
        return core in actual
    if start:
        return actual.endswith(core)
    if end:
        return actual.startswith(core)
    return actual == value


def _select(record: dict[str, Any], selector: str) -> Any:
    node: Any = record
    for part in selector[2:].split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.pos]
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected!r}, got {token!r}")
        self.pos += 1
        return token

    def expr(self) -> Any:
        terms = [self.conj()]
        while self.peek() == "||":
            self.take()
            terms.append(self.conj())
        return lambda r: any(t(r) for t in terms)

    def conj(self) -> Any:
        terms = [self.primary()]
        while self.peek() == "&&":
            self.take()
            terms.append(self.primary())
        return lambda r: all(t(r) for t in terms)

    def primary(self) -> Any:
        if self.peek() == "(":
            self.take("(")
            inner = self.expr()
            self.take(")")
            return inner
        selector = self.take()
        if not selector.startswith("$."):
            raise ValueError(f"expected a selector, got {selector!r}")
        op = self.take()
        if op == "NOT EXISTS":
            return lambda r: _select(r, selector) is _MISSING
        literal = self.take()
        if op not in ("=", "!=") or not (literal.startswith('"') and literal.endswith('"')):
            raise ValueError(f"unsupported comparison {selector} {op} {literal}")
        value = literal[1:-1]
        if op == "=":
            return lambda r: _value_matches(value, _select(r, selector))
        return lambda r: _select(r, selector) is not _MISSING and not _value_matches(value, _select(r, selector))


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> Any:
    text = pattern.strip()
    assert text.startswith("{") and text.endswith("}"), pattern
    parser = _Parser(_tokens(text[1:-1]))
    predicate = parser.expr()
    assert parser.peek() is None, f"trailing tokens in {pattern!r}"
    return predicate


def cwl_matches(pattern: str, record: dict[str, Any]) -> bool:
    return pattern == "" or _compiled(pattern)(record)


def test_the_evaluator_follows_the_documented_examples() -> None:
    doc = {"user": {"id": "1", "email": "John.Stiles@example.com"}, "eventName": "PutEvent"}
    assert cwl_matches('{ $.eventName = "*Event" }', doc)
    assert cwl_matches('{ $.eventName = "Put*" }', doc)
    assert not cwl_matches('{ $.eventName = "P*Event" }', doc)  # an inner '*' is literal
    assert cwl_matches('{ $.user.email = "John.Stiles@example.com" || $.eventName = "x" && $.eventName = "y" }', doc)
    assert not cwl_matches(
        '{ ($.user.email = "John.Stiles@example.com" || $.eventName = "x") && $.eventName = "y" }', doc
    )
    assert cwl_matches("{ $.missing NOT EXISTS }", doc)


# --- corpus ------------------------------------------------------------------------------------

NAMES = [
    "CreateRoute",
    "CreateRouteTable",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateUser",
    "DeleteUser",
    "CreateAccessKey",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "CreateSecurityGroup",
    "DescribeSecurityGroups",
    "ApplySecurityGroupsToLoadBalancer",
    "PutBucketPolicy",
    "GetBucketPolicy",
    "AttachRolePolicy",
    "CreateNatGateway",
    "CreateTransitGatewayRoute",
    "CreateVpc",
    "DescribeVpcs",
    "CreateNetworkAclEntry",
    "StopLogging",
    "StartLogging",
    "DeleteTrail",
    "UpdateTrail",
    "StopConfigurationRecorder",
    "DeleteConfigurationRecorder",
    "DeleteDeliveryChannel",
    "RunInstances",
    "ListUsers",
    "HeadBucket",
    "LookupEvents",
    "CreateDBInstance",
    "CreateFunction20150331",
    "CreateBucket",
    "PutRolePolicy",
    "CreatePolicyVersion",
    "CreatePolicy",
]
SOURCES = [
    "ec2.amazonaws.com",
    "iam.amazonaws.com",
    "s3.amazonaws.com",
    "rds.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "lambda.amazonaws.com",
]
IDENTITIES: dict[str, dict[str, Any]] = {
    "IAMUser": {
        "type": "IAMUser",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/nina",
        "accountId": ACCOUNT,
        "userName": "nina",
    },
    "AssumedRole": {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/nina",
        "accountId": ACCOUNT,
        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Admin"}},
    },
    "Root": {"type": "Root", "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT},
}


def api_record(name: str, source: str, identity: str, error: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": IDENTITIES[identity],
        "eventTime": "2025-03-18T09:02:11Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-west-2",
        "sourceIPAddress": "203.0.113.201",
        "requestParameters": {},
        "eventID": "79fd2d2d-6ff9-4ddf-aad6-3dea347aedd6",
        "readOnly": name.startswith(("Get", "List", "Describe", "Head", "Lookup")),
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error:
        record.update(errorCode="AccessDenied", errorMessage="Access Denied")
    return record


def corpus() -> list[dict[str, Any]]:
    return [api_record(n, s, i, e) for n, s, i, e in itertools.product(NAMES, SOURCES, IDENTITIES, (False, True))]


def signin_record(
    identity: dict[str, Any],
    result: str = "Success",
    mfa: str = "No",
    name: str = "ConsoleLogin",
    error_message: str | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2025-03-18T08:02:13Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": None,
        "responseElements": {name: result},
        "additionalEventData": {"MFAUsed": mfa},
        "eventID": "690de331-1674-4d30-b414-0597e75b043e",
        "eventType": "AwsConsoleSignIn",
        "recipientAccountId": ACCOUNT,
    }
    if error_message:
        record["errorMessage"] = error_message
    return record


HIDDEN = {"type": "IAMUser", "accountId": ACCOUNT, "accessKeyId": "", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
SIGNINS = [
    signin_record(IDENTITIES["Root"]),
    signin_record(IDENTITIES["Root"], result="Failure", error_message="Failed authentication"),
    signin_record(IDENTITIES["IAMUser"]),
    signin_record(IDENTITIES["IAMUser"], mfa="Yes"),
    signin_record(IDENTITIES["IAMUser"], result="Failure", mfa="Yes", error_message="Failed authentication"),
    signin_record(HIDDEN, result="Failure", error_message="No username found in supplied account"),
    signin_record(IDENTITIES["AssumedRole"]),
    signin_record(IDENTITIES["Root"], name="PasswordRecoveryRequested"),
    signin_record(IDENTITIES["IAMUser"], name="CheckMfa"),
]


def ev(record: dict[str, Any]) -> TrailEvent:
    parsed = parse_record(record, "test")
    assert isinstance(parsed, TrailEvent)
    return parsed


def rules_select(rules: DirectRules, record: dict[str, Any]) -> bool:
    event = ev(record)
    return is_sensitive_call(event, rules) or signin_alert(event, rules) is not None


def eventbridge_envelope(record: dict[str, Any]) -> dict[str, Any]:
    signin = record["eventType"] == "AwsConsoleSignIn"
    return {
        "version": "0",
        "id": "eaf70191-7da4-46a5-9d75-ac1f444319a6",
        "detail-type": SIGNIN_DETAIL_TYPE if signin else API_CALL_DETAIL_TYPE,
        "source": "aws." + record["eventSource"].split(".")[0],
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


@functools.lru_cache(maxsize=64)
def _loaded(pattern: str) -> Any:
    return EventPattern.load(pattern)


def eventbridge_select(patterns: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    envelope = eventbridge_envelope(record)
    return any(_loaded(json.dumps(p, sort_keys=True)).matches_event(envelope) for p in patterns)


def delivered_by_eventbridge(record: dict[str, Any]) -> bool:
    """A rule in state ENABLED receives no read-only Describe/Get/List call."""
    return not (record.get("readOnly") and record["eventName"].startswith(("Describe", "Get", "List")))


def exact_on_eventbridge(record: dict[str, Any]) -> bool:
    """Where the patterns say exactly what the rules say: API calls EventBridge delivers, except the
    read-only names it delivers anyway (Head*, Lookup*), which only the Lambda drops."""
    return (
        record["eventType"] == "AwsApiCall"
        and delivered_by_eventbridge(record)
        and not record["eventName"].startswith(("Head", "Lookup"))
    )


# Every set but "defaults" turns tamper protection off, so the pattern can be exact on the names.
RULE_SETS = {
    "defaults": {},
    "no-tamper": {"tamper": False},
    "seed-001": {**SEED_001_RULES, "tamper": False},
    "seed-002": {**SEED_002_RULES, "tamper": False},
    "inner-star": {"include": ["Create*Policy", "*Gateway*", "Delete*Route*"], "tamper": False},
    "excludes": {"exclude": ["*SecurityGroupEgress", "Create*Policy", "PutBucketPolicy"], "tamper": False},
    "no-errors": {"include_errors": False, "tamper": False},
    "sources-and-types": {"event_sources": ["ec2.amazonaws.com"], "identity_types": ["IAMUser", "Root"],
                          "tamper": False},
    "no-root-signin": {"signin": {"root": False}, "tamper": False},
    "no-signin": {"signin": False, "tamper": False},
    "tamper-with-filters": {"event_sources": ["ec2.amazonaws.com"], "identity_types": ["IAMUser"],
                            "include": ["CreateRoute"]},
}
EXACT_ON_API_CALLS = {
    "no-tamper",
    "seed-001",
    "seed-002",
    "inner-star",
    "sources-and-types",
    "no-root-signin",
    "no-signin",
}


# --- EventBridge -------------------------------------------------------------------------------


def test_moto_supports_the_operators_we_emit() -> None:
    event = {"source": "aws.ec2", "detail-type": API_CALL_DETAIL_TYPE, "detail": {"eventName": "CreateUser"}}

    def matches(names: list[Any]) -> bool:
        pattern = {"source": [{"prefix": "aws."}], "detail": {"eventName": names}}
        return EventPattern.load(json.dumps(pattern)).matches_event(event)

    assert matches(["CreateUser"]) and not matches(["CreateUserX"])
    assert matches([{"prefix": "Create"}]) and not matches([{"prefix": "Delete"}])
    assert matches([{"suffix": "User"}]) and not matches([{"suffix": "Role"}])
    assert (
        matches([{"wildcard": "*eate*"}]) and matches([{"wildcard": "Cr*ser"}]) and not matches([{"wildcard": "*x*"}])
    )
    assert matches([{"anything-but": "DeleteUser"}]) and not matches([{"anything-but": "CreateUser"}])


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_eventbridge_patterns_select_at_least_the_rules_records(name: str) -> None:
    rules = DirectRules.from_mapping(RULE_SETS[name])
    patterns = eventbridge_patterns(rules)
    for pattern in patterns:
        text = json.dumps(pattern)
        assert len(json.dumps(pattern, separators=(",", ":"))) <= EVENTBRIDGE_MAX_PATTERN
        EventPattern.load(text)  # moto validates the syntax
    for record in corpus() + SIGNINS:
        wanted = rules_select(rules, record)
        selected = eventbridge_select(patterns, record)
        if wanted:
            assert selected, (name, record["eventName"], record["eventSource"], record["userIdentity"]["type"])
        elif name in EXACT_ON_API_CALLS and exact_on_eventbridge(record):
            assert not selected, (name, record["eventName"], record["eventSource"])


def test_default_eventbridge_patterns_send_every_api_call_for_tamper_protection() -> None:
    api, signin = eventbridge_patterns(DirectRules())
    assert api == {"source": [{"prefix": "aws."}], "detail-type": [API_CALL_DETAIL_TYPE]}
    assert signin == {"source": ["aws.signin"], "detail-type": [SIGNIN_DETAIL_TYPE]}


def test_eventbridge_patterns_without_tamper_protection_name_the_calls() -> None:
    api, signin = eventbridge_patterns(DirectRules(tamper=False))
    assert api["source"] == [{"prefix": "aws."}]
    assert api["detail-type"] == [API_CALL_DETAIL_TYPE]
    assert {"wildcard": "*SecurityGroup*"} in api["detail"]["eventName"]
    assert {"suffix": "User"} in api["detail"]["eventName"]
    assert "CreateRoute" in api["detail"]["eventName"]
    assert signin == {"source": ["aws.signin"], "detail-type": [SIGNIN_DETAIL_TYPE]}


def test_eventbridge_pattern_for_seed_001_filters_sources_and_identity() -> None:
    api, _signin = eventbridge_patterns(DirectRules.from_mapping({**SEED_001_RULES, "tamper": False}))
    assert "eventName" not in api["detail"]
    assert api["detail"]["userIdentity"] == {"type": ["IAMUser"]}
    assert api["detail"]["eventSource"] == SEED_001_RULES["event_sources"]


def test_eventbridge_sign_in_pattern_follows_the_sign_in_options() -> None:
    assert eventbridge_patterns(DirectRules.from_mapping({"signin": {"root": False}}))[-1]["detail"] == {
        "eventName": ["ConsoleLogin"]
    }
    assert all(
        p["detail-type"] != [SIGNIN_DETAIL_TYPE]
        for p in eventbridge_patterns(DirectRules.from_mapping({"signin": False}))
    )


def test_forged_events_from_custom_sources_are_not_selected() -> None:
    (api, _signin) = eventbridge_patterns(DirectRules())
    forged = eventbridge_envelope(api_record("CreateUser", "iam.amazonaws.com", "IAMUser"))
    forged["source"] = "my.app"
    assert not EventPattern.load(json.dumps(api)).matches_event(forged)


def test_long_include_lists_are_split_into_several_eventbridge_rules() -> None:
    names = [f"Create{word}Thing{i}" for i, word in enumerate(["Alpha", "Beta", "Gamma", "Delta"] * 30)]
    rules = DirectRules.from_mapping({"include": names, "tamper": False})
    patterns = eventbridge_patterns(rules)
    api = [p for p in patterns if p["detail-type"] == [API_CALL_DETAIL_TYPE]]
    assert len(api) > 1
    assert all(len(json.dumps(p, separators=(",", ":"))) <= EVENTBRIDGE_MAX_PATTERN for p in api)
    for name in names[::7]:
        assert eventbridge_select(patterns, api_record(name, "ec2.amazonaws.com", "IAMUser"))
    assert not eventbridge_select(patterns, api_record("CreateOmegaThing", "ec2.amazonaws.com", "IAMUser"))


# --- CloudWatch Logs ---------------------------------------------------------------------------


def balanced(pattern: str) -> bool:
    depth = 0
    for char in re.sub(r'"[^"]*"', '""', pattern):
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and pattern.count('"') % 2 == 0


@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_cloudwatch_logs_pattern_selects_at_least_the_rules_records(name: str) -> None:
    rules = DirectRules.from_mapping(RULE_SETS[name])
    pattern = cloudwatch_logs_filter_pattern(rules)
    assert len(pattern) <= CWL_MAX_PATTERN
    assert balanced(pattern)
    for record in corpus() + SIGNINS:
        wanted = rules_select(rules, record)
        selected = cwl_matches(pattern, record)
        if wanted:
            assert selected, (name, record["eventName"], record["eventSource"], record["userIdentity"]["type"])
        elif name in EXACT_ON_API_CALLS - {"inner-star"} and record["eventType"] == "AwsApiCall":
            assert not selected, (name, record["eventName"], record["eventSource"], record["userIdentity"]["type"])


def test_failed_authentication_console_login_is_selected() -> None:
    """hidekuro's one-line filter spelled "Failedauthentication" and so never matched (poc.md §2)."""
    failed = signin_record(IDENTITIES["IAMUser"], result="Failure", mfa="Yes", error_message="Failed authentication")
    for raw in ({}, SEED_002_RULES, {"signin": {"root": False, "no_mfa": False}}, SEED_001_RULES):
        assert cwl_matches(cloudwatch_logs_filter_pattern(DirectRules.from_mapping(raw)), failed)
    hidekuro_one_line = (
        '{($.eventName!="Get*")&&(($.eventName="CreateRoute")||(($.eventName="ConsoleLogin")'
        '&&($.errorMessage="Failedauthentication")))}'
    )
    assert not cwl_matches(hidekuro_one_line, failed)


def test_default_cloudwatch_logs_pattern_sends_sign_ins_and_every_write_for_tamper_protection() -> None:
    pattern, notes = cloudwatch_logs_filter(DirectRules())
    assert pattern == ('{ ($.eventSource = "signin.amazonaws.com") || (($.eventName != "Get*") && '
                       '($.eventName != "List*") && ($.eventName != "Describe*") && ($.eventName != "Head*") && '
                       '($.eventName != "Lookup*")) }')
    assert notes and "tamper protection is on" in notes[0]


def test_cloudwatch_logs_pattern_without_tamper_protection_is_exact_and_readable() -> None:
    pattern, notes = cloudwatch_logs_filter(DirectRules(tamper=False))
    assert notes == ()
    assert pattern.startswith('{ ($.eventSource = "signin.amazonaws.com") || (')
    assert '($.eventName = "*SecurityGroup*")' in pattern
    assert '($.eventName != "Describe*")' in pattern


def test_inner_star_globs_are_widened_and_said_so() -> None:
    assert cwl_values("Create*Policy") == (("Create*", "*Policy"), False)
    assert cwl_values("*Policy*") == (("*Policy*",), True)
    assert cwl_values("A*b*c*D") == (("A*", "*D", "*b*", "*c*"), False)
    pattern, notes = cloudwatch_logs_filter(DirectRules.from_mapping({"include": ["Ab*bc"], "tamper": False}))
    assert any("Ab*bc" in note for note in notes)
    assert cwl_matches(pattern, api_record("Abc", "ec2.amazonaws.com", "IAMUser"))  # wider: prefix+suffix overlap
    assert not glob_matches("Ab*bc", "Abc")


def test_too_long_rules_fall_back_to_wider_patterns_that_fit() -> None:
    names = [f"Create{word}Thing{i}" for i, word in enumerate(["Alpha", "Beta", "Gamma", "Delta"] * 15)]
    rules = DirectRules.from_mapping({"include": names, "event_sources": ["ec2.amazonaws.com"], "tamper": False})
    pattern, notes = cloudwatch_logs_filter(rules)
    assert len(pattern) <= CWL_MAX_PATTERN and balanced(pattern)
    assert notes and "event names are not in the pattern" in notes[-1]
    assert cwl_matches(pattern, api_record(names[-1], "ec2.amazonaws.com", "IAMUser"))
    assert not cwl_matches(pattern, api_record(names[-1], "iam.amazonaws.com", "IAMUser"))


def test_rules_that_select_nothing() -> None:
    rules = DirectRules.from_mapping({"include": [], "signin": False, "tamper": False})
    assert cloudwatch_logs_filter_pattern(rules) == CWL_NOTHING
    assert eventbridge_patterns(rules) == []
    for record in corpus()[:50] + SIGNINS:
        assert not cwl_matches(CWL_NOTHING, record)
    only_signins = DirectRules.from_mapping({"include": [], "tamper": False})
    assert cloudwatch_logs_filter_pattern(only_signins) == '{ $.eventSource = "signin.amazonaws.com" }'
    assert [p["source"] for p in eventbridge_patterns(only_signins)] == [["aws.signin"]]


GLOB = st.lists(st.sampled_from(["*", "A", "b", "Ab", "bA", "Policy", "x"]), min_size=1, max_size=5).map("".join)
NAME = st.lists(st.sampled_from(["A", "b", "Ab", "Policy", "x", "Create"]), min_size=1, max_size=6).map("".join)


@settings(max_examples=300, deadline=None)
@given(glob=GLOB, name=NAME)
def test_glob_translations(glob: str, name: str) -> None:
    glob = re.sub(r"\*+", "*", glob)
    expected = glob_matches(glob, name)
    matcher = eventbridge_matcher(glob)
    if glob != "*":
        pattern = {"detail": {"eventName": [matcher]}}
        assert EventPattern.load(json.dumps(pattern)).matches_event({"detail": {"eventName": name}}) == expected
    values, exact = cwl_values(glob)
    widened = all(_value_matches(v, name) for v in values)
    assert widened if expected else (widened == expected or not exact)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "direct-alerts.md"


def test_docs_examples_are_valid_and_current() -> None:
    text = DOCS.read_text(encoding="utf-8")
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S)]
    for example in examples:
        DirectRules.from_mapping(Settings.from_dict(example).direct_rules)
    documented = [e["direct_rules"] for e in examples]
    assert SEED_001_RULES in documented
    assert SEED_002_RULES in documented
    assert cloudwatch_logs_filter_pattern(DirectRules()) in text
