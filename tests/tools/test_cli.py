"""The ``mcd`` command: usage, unknown commands, and each command handed its own arguments."""

from __future__ import annotations

import pytest

from mcd_tools import cli, explain, patterns_cmd


def test_no_command_prints_usage_and_fails_help_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert capsys.readouterr().out.startswith("usage: mcd COMMAND")
    for flag in ("-h", "--help", "help"):
        assert cli.main([flag]) == 0
    assert "patterns [--settings FILE]" in capsys.readouterr().out


def test_an_unknown_command_is_named_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "--now"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcd: unknown command 'deploy'") and "usage: mcd" in err


@pytest.mark.parametrize(("command", "module"), [("explain", explain), ("patterns", patterns_cmd)])
def test_a_command_gets_the_rest_of_the_arguments(monkeypatch: pytest.MonkeyPatch, command: str,
                                                  module: object) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(module, "main", lambda argv: seen.append(argv) or 7)
    assert cli.main([command, "a", "--b"]) == 7
    assert seen == [["a", "--b"]]


def test_replay_is_dispatched_to_mcd_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcd_tools import replay

    monkeypatch.setattr(replay, "main", lambda argv: 3 if argv == ["s.json", "--out", "o"] else 1)
    assert cli.main(["replay", "s.json", "--out", "o"]) == 3
