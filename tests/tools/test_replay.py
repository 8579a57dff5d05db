"""``mcd replay``'s own parts: reading a scenario, routing deliveries, final outcomes, outputs and summary, and
what Lambda does with an asynchronous event after its last try (the destination record).

The whole replay (handlers, moto, the Slack stand-in) runs in ``tests/e2e/test_scenarios.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chalicelib.stages.dead_letters import FailedInvocation, rerun_for
from chalicelib.stages.reruns import RERUNS
from mcd_tools import replay, story
from mcd_tools.replay import ReplayResult, ScenarioError, load_scenario

GOOD = {"start": "2024-05-01T12:00:00Z", "end": "2024-05-01T14:00:00Z", "home_region": "eu-west-1",
        "deliveries": [{"at": "2024-05-01T12:01:00Z", "via": "sns", "message": "{}"}]}


def written(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_a_good_scenario_is_read_as_written(tmp_path: Path) -> None:
    assert load_scenario(written(tmp_path, GOOD)) == GOOD
    assert load_scenario(str(written(tmp_path, GOOD))) == GOOD


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "cannot read scenario"),
    ("[]", "a scenario is a JSON object"),
    ({k: v for k, v in GOOD.items() if k != "home_region"}, "scenario has no 'home_region'"),
    ({k: v for k, v in GOOD.items() if k != "deliveries"}, "scenario has no 'deliveries'"),
    ({**GOOD, "start": "noon"}, "start/end are not ISO-8601"),
    ({**GOOD, "end": None}, "start/end are not ISO-8601"),
    ({**GOOD, "deliveries": {"at": "2024-05-01T12:01:00Z"}}, "deliveries must be a list"),
    ({**GOOD, "deliveries": [GOOD["deliveries"][0], {"via": "sns"}]}, "delivery 1 has no readable 'at'"),
    ({**GOOD, "deliveries": ["2024-05-01T12:01:00Z"]}, "delivery 0 has no readable 'at'"),
])
def test_an_unusable_scenario_says_why(tmp_path: Path, content: Any, message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        load_scenario(written(tmp_path, content))


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "absent.json")
    assert issubclass(ScenarioError, ValueError)


def test_main_refuses_a_bad_scenario_without_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay.main([str(written(tmp_path, "[]"))]) == 2
    assert "mcd replay: a scenario is a JSON object" in capsys.readouterr().err


@pytest.mark.parametrize(("detail_type", "handler"), [
    ("AWS Console Sign In via CloudTrail", "console_signin"),
    ("AWS API Call via CloudTrail", "api_call"),
    ("Config Configuration Item Change", "config_event"),
    ("Scheduled Event", None),
    (None, None),
])
def test_eventbridge_deliveries_reach_the_handler_of_their_rule(detail_type: str | None, handler: str | None) -> None:
    assert replay._eventbridge_target({"detail-type": detail_type}) == handler


def test_the_scenarios_account_comes_from_its_items_else_its_calls() -> None:
    item = json.dumps({"configurationItem": {"awsAccountId": "111111111111"}})
    summary = {"configurationItemSummary": {"accountId": "222222222222"}}
    assert replay._scenario_account({"deliveries": [{"message": "{broken"}, {"message": item}]}) == "111111111111"
    assert replay._scenario_account({"deliveries": [{"message": summary}]}) == "222222222222"
    trail = [{"record": {"userIdentity": {"accountId": "333333333333"}}},
             {"record": {"recipientAccountId": "444444444444"}}]
    assert replay._scenario_account({"deliveries": [{"message": {}}], "cloudtrail": trail}) == "333333333333"
    assert replay._scenario_account({"deliveries": [], "cloudtrail": trail[1:]}) == "444444444444"
    assert replay._scenario_account({}) == "000000000000"


def test_final_outcomes_keep_the_latest_revision_and_when_it_was_first_told() -> None:
    records = [
        {"outcome_id": "ci:a", "kind": "suppressed", "at": "t1", "revision": 0, "extra": {}},
        {"outcome_id": "ci:b", "kind": "manual_change", "at": "t2", "revision": 0},
        {"outcome_id": "ci:a", "kind": "manual_change", "at": "t3", "revision": 1},
        {"outcome_id": "ci:a", "kind": "unattributed_change", "at": "t4", "revision": 2,
         "extra": {"unverified": "CloudTrail kept failing"}},
        {"outcome_id": "ci:b", "kind": "manual_change", "at": "t5", "revision": 0, "event_ids": ["e-1"]},
    ]
    final = {o["outcome_id"]: o for o in replay._final_outcomes(records)}
    latest = final["ci:a"]
    assert (latest["kind"], latest["at"], latest["first_at"]) == ("unattributed_change", "t4", "t1")
    assert final["ci:a"]["unverified"] == "CloudTrail kept failing"
    assert final["ci:b"]["event_ids"] == ["e-1"], "a redelivery of the same revision: the later record"
    assert "unverified" not in final["ci:b"] and final["ci:b"]["first_at"] == "t2"
    assert set(final["ci:b"]) == {*replay.OUTCOME_KEYS, "first_at"}


def result(**fields: Any) -> ReplayResult:
    return ReplayResult(**{"outcomes": [], "slack": [], "lookup_calls": 0, "throttled": 0, **fields})


def test_the_summary_counts_kinds_messages_calls_and_errors() -> None:
    assert replay.summary(result()) == (
        "outcomes: no outcomes; slack messages: 0; LookupEvents calls: 0 (0 throttled)")
    busy = result(outcomes=[{"kind": "suppressed"}, {"kind": "manual_change"}, {"kind": "suppressed"}],
                  slack=[{}], lookup_calls=7, throttled=1, errors=["ingest failed: " + "x" * 300, "other"])
    line = replay.summary(busy)
    assert line.startswith("outcomes: 1 manual_change, 2 suppressed; slack messages: 1; "
                           "LookupEvents calls: 7 (1 throttled); handler errors: 2 (first: ingest failed: ")
    assert line.endswith("x" * (200 - len("ingest failed: ")) + ")")


def test_outputs_are_one_json_line_per_outcome_and_message(tmp_path: Path) -> None:
    done = result(outcomes=[{"kind": "manual_change", "outcome_id": "ci:a"}, {"kind": "suppressed"}],
                  slack=[{"at": "t", "destination": "default", "payload": {"text": "hi"}}])
    replay.write_outputs(done, tmp_path / "out" / "run")
    lines = (tmp_path / "out" / "run" / "outcomes.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == done.outcomes
    assert (tmp_path / "out" / "run" / "slack.jsonl").read_text() == json.dumps(done.slack[0]) + "\n"


# --- an asynchronous event that failed every try: Lambda's destination record ------------------------------------

AT = datetime(2024, 5, 1, 12, 0, 41, 220_000, tzinfo=timezone.utc)
ARN = "arn:aws:lambda:eu-west-1:111122223333:function:mcd-replay-ingest"


def failure() -> RuntimeError:
    try:
        raise RuntimeError("1 SNS record(s) not ingested (Lambda retries them): S3 unreachable")
    except RuntimeError as error:
        return error


def test_the_destination_record_has_lambdas_shape_and_dl_retry_can_run_it_again() -> None:
    event = {"Records": [{"Sns": {"MessageId": "m-1", "Message": "{}"}}]}
    record = json.loads(replay.destination_record(ARN, event, failure(), "req-1", AT, 3))
    assert {k: record[k] for k in ("version", "timestamp", "requestContext", "requestPayload", "responseContext")} == {
        "version": "1.0", "timestamp": "2024-05-01T12:00:41.220Z",
        "requestContext": {"requestId": "req-1", "functionArn": f"{ARN}:$LATEST", "condition": "RetriesExhausted",
                           "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}}
    response = record["responsePayload"]
    assert (response["errorType"], response["errorMessage"], response["requestId"]) == (
        "RuntimeError", "1 SNS record(s) not ingested (Lambda retries them): S3 unreachable", "req-1")
    assert "in failure" in response["stackTrace"][-1]
    failed = FailedInvocation.read(json.dumps(record))
    assert (failed.function, failed.request_id, failed.invokes, failed.payload, failed.problem) == (
        "mcd-replay-ingest", "req-1", 3, event, "")
    assert rerun_for(failed.function, RERUNS) == "ingest" and failed.at == AT


def test_an_event_too_big_for_the_queue_is_left_out_of_its_record() -> None:
    big = {"awslogs": {"data": "x" * replay.MAX_RECORD_BYTES}}
    body = replay.destination_record(ARN.replace("ingest", "cloudwatch_logs"), big, failure(), "req-2", AT, 3)
    assert len(body.encode()) < 4096 and "requestPayload" not in json.loads(body)
    assert "carries no event" in FailedInvocation.read(body).problem


def lost_then_found() -> dict[str, Any]:
    """One manual change whose SNS delivery fails all three of Lambda's tries (the archive is unreachable)."""
    t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    delivery, entry = story.ingress("sg-0a5a1b2c3d4e5f6a7", "bastion-sg", story.sso_human("priya@example.com"), t0,
                                    "0.0.0.0/0", 22)
    return {"name": "lost-then-found", "start": story.iso(t0), "end": story.iso(t0 + timedelta(minutes=16)),
            "home_region": story.REGION, "settings": {}, "deliveries": [delivery], "cloudtrail": [entry]}


def unreachable_archive(times: int, sent: list[dict[str, Any]], env: dict[str, Any]) -> Any:
    """A ``prepare``: the first ``times`` archive writes fail; what is sent to the async-failed queue is kept."""
    def prepare(ctx: Any) -> None:
        env.update(url=ctx.deps.env.async_failed_queue_url)
        failures = {"left": times}

        def put(**_: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("S3 unreachable")

        def send(params: dict[str, Any], **_: Any) -> None:
            if params["QueueUrl"] == env["url"]:
                sent.append(json.loads(params["MessageBody"]))

        ctx.deps.clients.client("s3").meta.events.register("before-call.s3.PutObject", put)
        ctx.deps.clients.client("sqs").meta.events.register("before-parameter-build.sqs.SendMessage", send)
    return prepare


def test_an_event_lambda_gave_up_on_goes_to_the_async_failed_queue_and_dl_retry_runs_it_again() -> None:
    sent: list[dict[str, Any]] = []
    env: dict[str, Any] = {}
    result = replay.run(lost_then_found(), prepare=unreachable_archive(3, sent, env))
    assert env["url"].endswith("/mcd-replay-async-failed"), "the sandbox has the stage's async-failed queue"
    assert [e.split(":")[0] for e in result.errors] == ["ingest failed (attempt 1)", "ingest failed (attempt 2)",
                                                        "ingest failed (attempt 3)"]
    (record,) = sent
    assert record["requestContext"]["functionArn"] == (
        f"arn:aws:lambda:{story.REGION}:{story.ACCOUNT}:function:mcd-replay-ingest:$LATEST")
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == lost_then_found()["deliveries"][0]["message"]
    (outcome,) = result.outcomes  # dl_retry ran it again at 12:10: the change is told, not lost
    assert (outcome["kind"], outcome["resource_id"]) == ("manual_change", "sg-0a5a1b2c3d4e5f6a7")
    assert outcome["first_at"] >= "2024-05-01T12:10:00Z"
    assert len(result.slack) == 1 and "sg-0a5a1b2c3d4e5f6a7" in json.dumps(result.slack[0]["payload"])


def test_without_the_queue_the_event_is_dropped_and_the_run_says_so() -> None:
    sent: list[dict[str, Any]] = []
    env: dict[str, Any] = {}
    prepare = unreachable_archive(3, sent, env)

    def without_queue(ctx: Any) -> None:
        ctx.deps.env = replace(ctx.deps.env, async_failed_queue_url="")  # resources from before the queue
        prepare(ctx)

    scenario = {**lost_then_found(), "end": "2024-05-01T12:11:00Z"}
    result = replay.run(scenario, prepare=without_queue)
    assert sent == [] and result.outcomes == [] and result.slack == []
    assert result.errors[-1] == "ingest: no async-failed queue, the event is dropped after 3 tries"
