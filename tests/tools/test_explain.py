"""``mcd explain``: one JSON line per item; exit 0 for readable files, 2 for unreadable paths."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from mcd_tools import explain

EVENTS = Path(__file__).resolve().parents[1] / "events"


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_line_per_item_with_the_path_as_source(capsys):
    path = str(EVENTS / "sns_envelope_old_format_configuration_items.json")
    assert explain.main([path]) == 0
    out = lines(capsys.readouterr().out)
    assert [o["resource_id"] for o in out] == ["vol-3e7f1a2b", "i-9c8b7a6d"]
    assert {o["source"] for o in out} == {path}
    assert out[0]["kind"] == "config_change"


def test_several_files_and_unreadable_content_still_exit_zero(capsys):
    files = [str(EVENTS / "invalid_not_json.txt"), str(EVENTS / "awslogs_control_message.json")]
    assert explain.main(files) == 0
    out = lines(capsys.readouterr().out)
    assert [o["kind"] for o in out] == ["unparseable", "ignored"]
    assert out[0]["reason"]


def test_missing_path_exits_two_after_explaining_the_others(capsys, tmp_path):
    good = str(EVENTS / "config_snapshot_started.json")
    assert explain.main([str(tmp_path / "nope.json"), good]) == 2
    captured = capsys.readouterr()
    assert "nope.json" in captured.err and "cannot read" in captured.err
    assert [o["kind"] for o in lines(captured.out)] == ["ignored"]


def test_directory_is_unreadable(capsys, tmp_path):
    assert explain.main([str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_stdin(capsys, monkeypatch):
    payload = (EVENTS / "eventbridge_api_call_sso_authorize_sg.json").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(payload)))
    assert explain.main(["-"]) == 0
    [out] = lines(capsys.readouterr().out)
    assert out["event_name"] == "AuthorizeSecurityGroupIngress"
    assert out["source"] == "<stdin>"
    assert out["principal"]["display_name"] == "maria.garcia@example.com"


def test_usage_errors_and_help(capsys):
    assert explain.main([]) == 2
    assert "usage" in capsys.readouterr().err
    assert explain.main(["--help"]) == 0
    assert "FILE" in capsys.readouterr().out


def test_through_the_mcd_command(capsys):
    from mcd_tools import cli

    assert cli.main(["explain", str(EVENTS / "config_compliance_change.json")]) == 0
    assert lines(capsys.readouterr().out)[0]["kind"] == "ignored"
