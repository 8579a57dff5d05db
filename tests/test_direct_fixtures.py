"""Every sign-in and API-call shape among the shared public samples gives the right direct outcome."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chalicelib.core.model import TrailEvent
from chalicelib.core.rules import DirectRules, direct_outcome
from chalicelib.core.settings import Settings
from chalicelib.parsing.events import parse_payload

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

EXPECTED = {
    "cloudtrail_lookup/awscli__lookup_events_consolelogin_assumedrole.json": [None],  # federated: MFA at the IdP
    "cloudtrail_records/awsdocs_ct__consolelogin_iamuser_success_nomfa_records.json": [("console_signin", "no_mfa")],
    "cloudtrail_records/awsdocs_iam__assumedrole_role_chaining_sourceidentity_tags.json": [None],  # read-only STS
    "cloudtrail_records/awsdocs_iam__assumerole_cross_account_caller_iamuser.json": [None],
    "cloudtrail_records/stratus__iamuser_authorize_sg_ingress_port22_anonymized.json": [
        ("api_call", "AuthorizeSecurityGroupIngress")],
    "cloudwatch_logs/hidekuro__awslogs_event_gzip_cloudtrail_deleteuser.json": [("api_call", "DeleteUser")],
    "eventbridge/awsdocs_cwe__api_call_s3_create_bucket_root.json": [None],  # CreateBucket is not in the rules
    "eventbridge/awsdocs_cwe__console_signin_root_no_version_field.json": [("console_signin", "root")],
}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is not beside the clone")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_samples_give_the_right_direct_outcome(name: str) -> None:
    events = [i for i in parse_payload(json.loads((FIXTURES / name).read_text()), name) if isinstance(i, TrailEvent)]
    outcomes = [direct_outcome(e, Settings(), DirectRules.from_mapping(None), NOW) for e in events]
    got = [None if o is None else (o.kind, o.signin or o.event_name) for o in outcomes]
    assert got == EXPECTED[name]
