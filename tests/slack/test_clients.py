"""``describe_client``: how a call was made, from its user agent and ``invokedBy``."""

from __future__ import annotations

import pytest
from slack_fixtures import CLI_UA, TERRAFORM_UA, assert_valid, event, manual, mrkdwn_texts, read

from chalicelib.slack.clients import describe_client
from chalicelib.slack.render import render


@pytest.mark.parametrize(
    ("user_agent", "invoked_by", "expected"),
    [
        ("console.amazonaws.com", None, "AWS console"),
        ("console.ec2.amazonaws.com", None, "AWS console"),
        ("[S3Console/0.4, aws-internal/3]", None, "AWS console"),
        ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10]", None, "AWS console"),
        ("AWSConsole", None, "AWS console"),
        ("signin.amazonaws.com", None, "AWS console"),
        (TERRAFORM_UA, None, "Terraform 1.7.5 (aws provider 5.40.0)"),
        (CLI_UA, None, "AWS CLI 2.15.0"),
        ("aws-cli/1.11.83 Python/2.7.12 Linux/4.4.0-1016-aws botocore/1.5.46", None, "AWS CLI 1.11.83"),
        ("aws-cli/2.15.0 md/awscrt#0.19 exec-env/CloudShell", None, "AWS CLI 2.15.0 in CloudShell"),
        ("Boto3/1.34 md/Botocore#1.34.131 ua/2.0 Botocore/1.34.131", None, "SDK (Python boto3 1.34)"),
        ("Botocore/1.34.131", None, "SDK (Python botocore)"),
        ("aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)", None, "SDK (Go)"),
        ("Datadog/1.0 aws-sdk-go/1.50.8 (go1.21.6; linux; amd64)", None, "SDK (Go)"),
        ("aws-sdk-go-v2/1.30.5 os/linux", None, "SDK (Go)"),
        ("aws-sdk-java/1.12.750 Linux/5.10", None, "SDK (Java)"),
        ("aws-sdk-nodejs/2.1632.0 linux/v20.13.1 promise", None, "SDK (JavaScript)"),
        ("cloudformation.amazonaws.com", "cloudformation.amazonaws.com", "CloudFormation"),
        (None, "cloudformation.amazonaws.com", "CloudFormation"),
        ("autoscaling.amazonaws.com", "autoscaling.amazonaws.com", "AWS Auto Scaling"),
        ("guardduty.amazonaws.com", "guardduty.amazonaws.com", "AWS service (guardduty.amazonaws.com)"),
        ("elasticloadbalancing.amazonaws.com", None, "AWS service (elasticloadbalancing.amazonaws.com)"),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            None,
            "Browser (Chrome)",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            None,
            "Browser (Edge)",
        ),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", None, "Browser (Firefox)"),
        ("AWS Internal", None, "AWS internal"),
        ("stratus-red-team_1b2c", None, "Other client (stratus-red-team_1b2c)"),
        ("", None, "unknown"),
        (None, None, "unknown"),
    ],
)
def test_describe_client(user_agent: str | None, invoked_by: str | None, expected: str) -> None:
    assert describe_client(user_agent, invoked_by) == expected


def test_describe_client_of_a_spoofed_terraform_agent_keeps_the_raw_agent_visible_and_escaped() -> None:
    agent = "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) <!here> <https://evil.example/ok|ok>"
    assert describe_client(agent, None) == "Terraform 1.9.5"
    payload = render([manual(events=(event(user_agent=agent),))])
    assert_valid(payload)
    assert "&lt;!here&gt;" in read("\n".join(mrkdwn_texts(payload)))
