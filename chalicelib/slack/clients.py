"""How a call was made: the client behind a user agent or ``invokedBy`` (raw text; pure).

A user agent is client-controlled, so this describes what the caller *claims*; the alert also shows the
raw agent.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chalicelib.core.outcomes import Outcome
from chalicelib.core.text import clip, nonblank, one_line
from chalicelib.slack.labels import person

_VERSION = r"([0-9][0-9A-Za-z.+-]{0,19})"
_SDKS = (
    ("aws-sdk-go-v2", "Go"),
    ("aws-sdk-go", "Go"),
    ("aws-sdk-java", "Java"),
    ("aws-sdk-nodejs", "JavaScript"),
    ("aws-sdk-js", "JavaScript"),
    ("aws-sdk-dotnet", ".NET"),
    ("aws-sdk-net", ".NET"),
    ("aws-sdk-ruby", "Ruby"),
    ("aws-sdk-php", "PHP"),
    ("aws-sdk-rust", "Rust"),
    ("aws-sdk-cpp", "C++"),
    ("aws-sdk-swift", "Swift"),
    ("aws-sdk-kotlin", "Kotlin"),
)
_BROWSERS = (("edg/", "Edge"), ("firefox/", "Firefox"), ("chrome/", "Chrome"), ("safari/", "Safari"))
_SERVICE_NAMES = {
    "cloudformation.amazonaws.com": "CloudFormation",
    "autoscaling.amazonaws.com": "AWS Auto Scaling",
    "signin.amazonaws.com": "AWS console sign-in",
    "console.amazonaws.com": "AWS console",
}
_CONSOLE_UA = re.compile(
    r"^\[?(console(\.[a-z0-9-]+)?\.amazonaws\.com|signin\.amazonaws\.com|awsconsole|[a-z0-9]*console/)",
    re.IGNORECASE,
)


def _version(pattern: str, text: str) -> str | None:
    match = re.search(pattern + "/" + _VERSION, text, re.IGNORECASE)
    return match.group(1) if match else None


def _tooling(agent: str, low: str) -> str | None:
    """Infrastructure-as-code tools."""
    if "terraform" in low:
        version, provider = _version("terraform", agent), _version("terraform-provider-aws", agent)
        text = "Terraform" + (f" {version}" if version else "")
        return text + (f" (aws provider {provider})" if provider else "")
    if "pulumi" in low:
        return "Pulumi"
    if "aws-cdk" in low:
        return "AWS CDK"
    return "CloudFormation" if low.startswith("cloudformation.amazonaws.com") else None


def _console(agent: str, _low: str) -> str | None:
    return "AWS console" if _CONSOLE_UA.match(agent) else None


def _command_line(agent: str, low: str) -> str | None:
    if "aws-cli/" in low:
        version = _version("aws-cli", agent)
        text = "AWS CLI" + (f" {version}" if version else "")
        return text + (" in CloudShell" if "cloudshell" in low else "")
    if "awspowershell" in low or "aws-powershell" in low:
        return "AWS Tools for PowerShell"
    return None


def _sdk(agent: str, low: str) -> str | None:
    if "boto3/" in low:
        version = _version("boto3", agent)
        return "SDK (Python boto3" + (f" {version})" if version else ")")
    if "botocore/" in low:
        return "SDK (Python botocore)"
    return next((f"SDK ({language})" for marker, language in _SDKS if marker + "/" in low), None)


def _browser(_agent: str, low: str) -> str | None:
    if "mozilla/" not in low:
        return None
    browser = next((name for key, name in _BROWSERS if key in low), None)
    return f"Browser ({browser})" if browser else "Browser"


def _aws_itself(agent: str, low: str) -> str | None:
    if low.endswith(".amazonaws.com") and " " not in low:
        return f"AWS service ({clip(agent, 60)})"
    return "AWS internal" if low == "aws internal" else None


_DESCRIBERS: tuple[Callable[[str, str], str | None], ...] = (
    _tooling, _console, _command_line, _sdk, _browser, _aws_itself,
)  # fmt: skip
"""Tried in order on (user agent, lower-cased user agent); the first answer wins."""


def describe_client(user_agent: str | None, invoked_by: str | None) -> str:
    """Human description of the client behind a call, from its user agent and ``invokedBy``.

    One of: ``AWS console``, ``AWS CLI x`` (``… in CloudShell``), ``SDK (Lang)``, ``Terraform x``,
    ``Pulumi``, ``AWS CDK``, ``CloudFormation``, ``Browser (Chrome)``, ``AWS service (name)``,
    ``Other client (…)`` or ``unknown``. The result is raw text: escape it before showing it.
    """
    service = (invoked_by or "").strip().lower()
    if service:
        return _SERVICE_NAMES.get(service) or f"AWS service ({clip(one_line(invoked_by), 60)})"
    agent = one_line(user_agent).strip()
    if not agent:
        return "unknown"
    low = agent.lower()
    for describe in _DESCRIBERS:
        text = describe(agent, low)
        if text:
            return text
    return f"Other client ({clip(agent.split(' ', 1)[0], 40)})"


def clients(outcome: Outcome) -> list[str]:
    """The distinct clients of an outcome's events (none when nothing says how the calls were made)."""
    invoked_by = nonblank(person(outcome).invoked_by)
    found: list[str] = []
    for event in outcome.events or (None,):
        agent = event.user_agent if event else None
        if agent is None and invoked_by is None:
            continue
        text = describe_client(agent, invoked_by)
        if text not in found:
            found.append(text)
    return found
