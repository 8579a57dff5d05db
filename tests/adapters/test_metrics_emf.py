"""``EmfMetrics`` writes one EMF line per data point to standard output, stamped by the stage's clock."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.memory import MemoryMetrics
from chalicelib.adapters.metrics import EmfMetrics


def test_each_data_point_is_one_json_line_on_stdout_in_lambda(capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mcd-prod-lookup")
    metrics = EmfMetrics("prod", lambda: 1_700_000_000.5)
    metrics.record("DeadLetters", 1, Queue="lookup_queue")
    metrics.record("LookupCalls", 7)
    lines = capsys.readouterr().out.splitlines()
    documents = [json.loads(line) for line in lines]
    assert [d["_aws"]["Timestamp"] for d in documents] == [1_700_000_000_500] * 2
    assert (documents[0]["Queue"], documents[0]["DeadLetters"], documents[1]["LookupCalls"]) == ("lookup_queue", 1, 7)


def test_the_fake_keeps_points_and_sums_them_by_dimension() -> None:
    metrics = MemoryMetrics()
    metrics.record("Outcomes", 1, Kind="manual_change")
    metrics.record("Outcomes", 1, Kind="suppressed")
    metrics.record("Outcomes", 1, Kind="manual_change")
    assert metrics.total("Outcomes") == 3 and metrics.total("Outcomes", Kind="manual_change") == 2


def test_outside_lambda_data_points_are_debug_log_lines(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    with caplog.at_level("DEBUG", logger="mcd.metrics"):
        EmfMetrics("local", lambda: 0.0).record("LookupCalls", 2)
    assert capsys.readouterr().out == ""
    assert json.loads(caplog.records[0].getMessage())["LookupCalls"] == 2
