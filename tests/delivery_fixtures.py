"""A Slack-sender test bench: moto (SQS, S3, DynamoDB, Secrets Manager, SSM), the real local Slack
stand-in and a simulated clock (time-machine, ``tick=False``; ``deps.sleep`` moves the clock).

``open_bench(monkeypatch, standin)`` sets one up; a test module wraps it in its own fixture. The
stand-in is shared by a module's tests (``shared_standin``; stopping one takes up to 0.5 s) and
reset for each bench; so may be the boto3 clients (moto intercepts them in every ``mock_aws``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
import time_machine
from moto import mock_aws

from chalicelib.adapters.aws import ClientFactory
from chalicelib.bootstrap import Deps, Environment
from chalicelib.core.outcomes import MANUAL_CHANGE, EventSummary, Outcome
from chalicelib.core.timeutil import iso, parse_time
from chalicelib.stages.deliver import slack_send
from mcd_tools.sandbox import create_resources
from mcd_tools.slack_standin import SlackStandIn

START = datetime(2024, 10, 29, 14, 0, tzinfo=timezone.utc)
REGION = "us-east-1"
ACCOUNT = "360172948513"
PREFIX = "mcd-test"


def alert(principal: str = "alice", resource: str = "sg-0a1", *, kind: str = MANUAL_CHANGE,
          account: str = ACCOUNT, outcome_id: str | None = None, at: str | None = None,
          event_name: str = "ModifySecurityGroupRules", **extra: Any) -> Outcome:
    """A plausible alert outcome by IAM user ``principal`` about ``resource``."""
    arn = f"arn:aws:iam::{account}:user/{principal}"
    when = at or iso(datetime.fromtimestamp(time.time(), tz=timezone.utc)) or ""
    values: dict[str, Any] = {
        "kind": kind, "outcome_id": outcome_id or f"ci:{account}:{resource}:{principal}", "at": when,
        "account": account, "region": "eu-west-1", "principal_arn": arn,
        "principal": {"type": "IAMUser", "arn": arn, "display_name": principal},
    }
    if kind == MANUAL_CHANGE:
        values.update(resource_type="AWS::EC2::SecurityGroup", resource_id=resource, change_type="UPDATE",
                      event_ids=(f"ev-{resource}",),
                      events=(EventSummary(f"ev-{resource}", event_name, when, "ec2.amazonaws.com", "eu-west-1",
                                           "203.0.113.9", "aws-cli/2.15.0"),))
    elif kind == "api_call":
        values.update(event_name=event_name, event_ids=(f"ev-{resource}",),
                      events=(EventSummary(f"ev-{resource}", event_name, when, "ec2.amazonaws.com", "eu-west-1",
                                           "203.0.113.9", "aws-cli/2.15.0"),))
    elif kind == "console_signin":
        values.update(signin=extra.pop("signin", "no_mfa"), event_ids=(f"ev-{resource}",),
                      events=(EventSummary(f"ev-{resource}", "ConsoleLogin", when, "signin.amazonaws.com",
                                           "us-east-1", "203.0.113.9", "Mozilla/5.0"),))
    values.update(extra)
    return Outcome(**values)


WORLD_OPEN_SSH = {
    "path": "Configuration.IpPermissions.0", "change_type": "UPDATE",
    "previous": {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipv4Ranges": [{"cidrIp": "10.0.0.0/16"}]},
    "updated": {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                "ipv4Ranges": [{"cidrIp": "10.0.0.0/16"}, {"cidrIp": "0.0.0.0/0"}]},
}


def world_open(principal: str = "alice", resource: str = "sg-0open", **extra: Any) -> Outcome:
    """A high-severity alert: ``principal`` opened SSH on ``resource`` to the whole internet."""
    return alert(principal, resource, event_name="AuthorizeSecurityGroupIngress",
                 changed_properties=(WORLD_OPEN_SSH,), **extra)


def failed_signin(principal: str = "alice", attempt: int = 1) -> Outcome:
    """A low-severity alert: a failed console sign-in by IAM user ``principal``."""
    return alert(principal, f"signin-{attempt}", kind="console_signin", signin="failure",
                 outcome_id=f"ct:failed-signin-{principal}-{attempt}")


class Bench:
    def __init__(self, traveller: Any, factory: ClientFactory, env: Environment, standin: SlackStandIn) -> None:
        self.traveller = traveller
        self.factory = factory
        self.env = env
        self.standin = standin
        self.deps = self.new_deps()

    # --- set-up

    def new_deps(self) -> Deps:
        """A fresh container: no cached settings or secrets (state in moto is kept)."""
        return Deps(self.env, self.factory, clock=time.time, sleep=self.sleep)

    def client(self, service: str) -> Any:
        return self.factory.client(service)

    def configure(self, settings: dict[str, Any]) -> None:
        """Store new settings and start a fresh container that reads them."""
        name = self.env.settings_ref[4:]
        self.client("ssm").put_parameter(Name=name, Type="SecureString", Value=json.dumps(settings), Overwrite=True)
        self.deps = self.new_deps()

    def put_secret(self, name: str, value: str) -> str:
        sm = self.client("secretsmanager")
        try:
            sm.create_secret(Name=name, SecretString=value)
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=name, SecretString=value)
        return name

    def put_parameter(self, name: str, value: str) -> str:
        self.client("ssm").put_parameter(Name=name, Type="SecureString", Value=value, Overwrite=True)
        return f"ssm:{name}"

    def webhook(self, dest: str) -> str:
        """A Secrets Manager secret holding the stand-in webhook URL of ``dest``; returns its id."""
        return self.put_secret(f"{PREFIX}/hook-{dest}", json.dumps({"url": self.standin.webhook_url(dest)}))

    # --- clock

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.traveller.shift(seconds)

    def advance(self, seconds: float) -> None:
        self.traveller.shift(seconds)

    # --- queue, runs, results

    def enqueue(self, *outcomes: Outcome, **extra: Any) -> None:
        queue = self.deps.queue("slack_queue")
        queue.send_many([{"outcome": {**o.to_json(), "revision": 0}, **extra} for o in outcomes])

    def send(self) -> dict[str, int]:
        return slack_send(self.deps)

    def every_minute(self, minutes: int) -> list[dict[str, int]]:
        results = []
        for _ in range(minutes):
            self.advance(60)
            results.append(self.send())
        return results

    def queue_depth(self) -> int:
        """Messages on the Slack queue: visible, delayed or in flight."""
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.env.slack_queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def messages(self, destination: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.standin.messages if destination is None or m["destination"] == destination]

    def arrivals(self, destination: str | None = None) -> list[float]:
        return [parse_time(m["at"]).timestamp() for m in self.messages(destination)]  # type: ignore[union-attr]

    def dead_letters(self) -> list[tuple[str, dict[str, Any]]]:
        s3 = self.client("s3")
        found = s3.list_objects_v2(Bucket=self.env.archive_bucket, Prefix="dead-letter/slack/").get("Contents", [])
        return [(o["Key"], json.loads(s3.get_object(Bucket=self.env.archive_bucket, Key=o["Key"])["Body"].read()))
                for o in found]

    def alert_dead_letters(self) -> list[tuple[str, dict[str, Any]]]:
        """Dead letters of alerts, without the operational alerts about them (``dead_letter`` kind)."""
        def operational(body: dict[str, Any]) -> bool:
            try:
                return json.loads(body.get("body") or "{}").get("outcome", {}).get("kind") == "dead_letter"
            except (ValueError, AttributeError):
                return False

        return [(key, body) for key, body in self.dead_letters() if not operational(body)]

    def marker(self, dest: str, outcome_id: str) -> dict[str, str] | None:
        return self.deps.state.get(f"post#{dest}#{outcome_id}", "posted")

    def dead_letter_queue_depth(self) -> int:
        """Messages SQS moved to the Slack dead-letter queue (redrive after ``maxReceiveCount``)."""
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=self.env.slack_dlq_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def recover(self, path: str) -> None:
        """Slack works again on ``path``: forget the faults still scripted for it."""
        with self.standin._lock:  # test scaffolding around a dev tool (see reset_standin)
            self.standin._script.pop(path, None)


def shared_standin() -> SlackStandIn:
    """A started stand-in whose arrival times follow whatever clock time-machine sets.

    A scripted slow answer ends on a connection the client has already closed (that is the timeout
    under test); the server's default ``handle_error`` would print that to stderr mid-run.
    """
    standin = SlackStandIn(clock=lambda: time.time())
    standin._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    return standin.start()


def reset_standin(standin: SlackStandIn) -> None:
    """Forget recorded messages, the request count and any scripted fault left over."""
    with standin._lock:  # no public reset: this is test scaffolding around a dev tool
        standin.messages.clear()
        standin._script.clear()
        standin.requests = 0


@contextmanager
def open_bench(monkeypatch: pytest.MonkeyPatch, standin: SlackStandIn,
               factory: ClientFactory | None = None) -> Iterator[Bench]:
    """A bench in a fresh emulated AWS; ``factory`` may be shared (creating boto3 clients is slow)."""
    reset_standin(standin)
    with mock_aws(), time_machine.travel(START, tick=False) as traveller:
        factory = factory or ClientFactory(REGION)
        env = create_resources(factory.client, REGION, prefix=PREFIX, settings={},
                               slack_secret_value=json.dumps({"url": standin.webhook_url("default")}))
        monkeypatch.setenv("MCD_SLACK_API_URL", f"{standin.base_url}/api/")
        # Like the replay: not a deployed Lambda function, no stage named, so the local stand-in is accepted.
        monkeypatch.delenv("MCD_STAGE", raising=False)
        monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
        yield Bench(traveller, factory, env, standin)
    reset_standin(standin)
