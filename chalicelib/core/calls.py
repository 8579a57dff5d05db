"""Which CloudTrail calls can change a resource: the one list both attribution and the direct rules use.

CloudTrail's own ``readOnly`` flag is not enough: it marks ``SimulatePrincipalPolicy`` or the Access
Advisor's ``GenerateServiceLastAccessedDetails`` as writes, so a person who only *looked* at a role
would be blamed for the Terraform change that followed. A call is read-like when CloudTrail says so,
when its name starts with one of ``READ_LIKE_PREFIXES`` (FORMAT.md, "Evidence"), or when it is one
of ``READ_LIKE_NAMES``: calls known to read, query, sign in or hand out credentials without changing
any resource's configuration. Exact names only there: ``Verify`` is read-like, ``VerifyEmailIdentity``
creates an identity. The direct ``api_call`` rules treat only ``COMMON_READ_PREFIXES`` as read-only
(FORMAT.md): a person simulating a policy is worth an alert of its own, never the cause of a change.
"""

from __future__ import annotations

READ_LIKE_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "Search", "Simulate", "Generate", "Validate",
                      "Estimate", "Preview", "Test", "Check", "Decode", "Poll", "BatchGet", "BatchDescribe",
                      "BatchCheck", "Filter")
# The five FORMAT.md names as read-only for the direct (``api_call``) rules: a person simulating or
# validating a policy is still worth an ``api_call``; those calls are only never the *cause* of a change.
COMMON_READ_PREFIXES = READ_LIKE_PREFIXES[:5]

READ_LIKE_NAMES = frozenset({
    # Access Analyzer, Access Advisor, policy generation and previews
    "StartPolicyGeneration", "CancelPolicyGeneration", "CreateAccessPreview", "StartResourceScan",
    # queries and log searches
    "StartQuery", "StopQuery", "StopQueryExecution",
    "Query", "Scan", "SelectObjectContent", "SelectResourceConfig", "SelectAggregateResourceConfig",
    "DownloadDBLogFilePortion", "RetrieveEnvironmentInfo", "StartLiveTail",
    # drift detection and evaluations report on a resource without changing it
    "DetectStackDrift", "DetectStackResourceDrift", "DetectStackSetDrift", "StartConfigRulesEvaluation",
    "StartResourceEvaluation", "BatchDetectDominantLanguage",
    # cryptographic use of a key is not a change to the key
    "Encrypt", "Decrypt", "ReEncrypt", "Sign", "Verify", "GenerateMac", "VerifyMac", "GenerateRandom",
    # credentials, sessions and sign-in bookkeeping
    "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot", "ConsoleLogin", "CheckMfa",
    "SwitchRole", "ExitRole", "RenewRoleCredentials", "Federate", "Authenticate", "CreateToken",
    "CreateTokenWithIAM", "RegisterClient", "StartDeviceAuthorization", "UserAuthentication",
    "CredentialChallenge", "CredentialVerification", "PasswordUpdated", "SetDefaultRoleSession",
    "CreateSession", "GetRoleCredentials", "StartSession", "ResumeSession", "TerminateSession",
    "OpenTunnel", "SendSSHPublicKey", "SendSerialConsoleSSHPublicKey", "StartNotebookSession",
    # console and support bookkeeping
    "ViewBilling", "AcknowledgeEvent", "SetTrackingPreferences",
})

WHAT_IT_DISABLES = {
    "StopLogging": "stops a CloudTrail trail logging",
    "DeleteTrail": "deletes a CloudTrail trail",
    "UpdateTrail": "changes where or what a CloudTrail trail logs",
    "StopConfigurationRecorder": "stops AWS Config recording changes",
    "DeleteConfigurationRecorder": "deletes AWS Config's recorder",
    "DeleteDeliveryChannel": "stops AWS Config delivering changes",
    "PutConfigurationRecorder": "changes which resources AWS Config records",
    "PutDeliveryChannel": "changes where AWS Config delivers changes",
    "PutEventSelectors": "changes which events a CloudTrail trail logs",
    "PutInsightSelectors": "changes CloudTrail Insights on a trail",
    "DeleteFlowLogs": "deletes VPC flow logs",
    "DeleteDetector": "deletes a GuardDuty detector",
    "DisableKey": "disables a KMS key",
    "ScheduleKeyDeletion": "schedules a KMS key's deletion",
}
"""Calls that blind the audit trail or what it protects (CloudTrail, AWS Config, GuardDuty, flow logs, KMS
keys), and what each one disables: sensitive by default (FORMAT.md "Default sensitive-call rules"),
always of high severity, and never folded into a digest."""

AUDIT_CALLS = (
    "StopLogging", "DeleteTrail", "UpdateTrail",
    "StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDeliveryChannel",
)
"""The calls that stop or redirect the audit trail itself (CloudTrail, AWS Config)."""

PROTECTIVE_CALLS = tuple(WHAT_IT_DISABLES)
"""Every call of ``WHAT_IT_DISABLES``: ``AUDIT_CALLS`` and the calls that blind what the trail protects."""

ACCESS_DENIED_CODES = ("UnauthorizedOperation", "Client.UnauthorizedOperation")


def is_read_like(event_name: str | None, read_only: bool | None = None) -> bool:
    """A call that reads or signs in: it cannot be the cause of a configuration change."""
    if read_only is True:
        return True
    name = (event_name or "").strip()
    if not name:
        return False
    return name in READ_LIKE_NAMES or name.startswith(READ_LIKE_PREFIXES)


def can_change(event_name: str | None, read_only: bool | None, error_code: str | None) -> bool:
    """A successful call that is not read-like: only such calls can have caused a configuration item."""
    return not error_code and bool((event_name or "").strip()) and not is_read_like(event_name, read_only)


def is_access_denied(error_code: str | None) -> bool:
    """A failed call worth knowing about: access was denied (not a validation or not-found error)."""
    code = (error_code or "").strip()
    return code.startswith("AccessDenied") or code in ACCESS_DENIED_CODES
