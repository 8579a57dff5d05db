"""``mcd patterns``: the filter and event patterns of a settings file's rules (or the defaults), as text or JSON."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from seed_rules import SEED_002_RULES

from chalicelib.core.errors import ConfigurationError
from chalicelib.core.patterns import (
    CWL_MAX_PATTERN,
    cloudwatch_logs_filter,
    cloudwatch_logs_filter_pattern,
    eventbridge_patterns,
)
from chalicelib.core.rules import DirectRules
from mcd_tools import patterns_cmd


def balanced(pattern: str) -> bool:
    """Parentheses and braces close in order outside quoted text, and quotes pair up."""
    depth = 0
    for char in re.sub(r'"[^"]*"', '""', pattern):
        depth += {"(": 1, ")": -1, "{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0 and pattern.count('"') % 2 == 0


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = patterns_cmd.main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- moved from tests/core/test_patterns.py ---------------------------------------------------


def test_mcd_patterns_prints_both_with_the_defaults() -> None:
    code, out, _err = run([])
    assert code == 0
    lines = out.splitlines()
    filter_line = next(line for line in lines if line.startswith("{"))
    assert filter_line == cloudwatch_logs_filter_pattern(DirectRules())
    assert len(filter_line) <= CWL_MAX_PATTERN and balanced(filter_line)
    start = next(i for i, line in enumerate(lines) if line.startswith("["))
    assert json.loads("\n".join(lines[start:])) == eventbridge_patterns(DirectRules())


def test_mcd_patterns_json_output(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"trusted_principals": [], "direct_rules": SEED_002_RULES}))
    code, out, _err = run(["--settings", str(settings_file), "--json"])
    assert code == 0
    result = json.loads(out)
    rules = DirectRules.from_mapping(SEED_002_RULES)
    assert result["cloudwatch_logs_filter_pattern"] == cloudwatch_logs_filter_pattern(rules)
    assert result["eventbridge_patterns"] == eventbridge_patterns(rules)
    assert '$.eventName = "ConsoleLogin"' in result["cloudwatch_logs_filter_pattern"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"direct_rules": {"include": ["Get*"]}}', "direct_rules.include"),
        ('{"direct_rules": {"identity_types": ["IamUser"]}}', "direct_rules.identity_types"),
        ('{"direct_rule": {}}', "direct_rule"),
        ("not json", "not JSON"),
        ("[]", "JSON object"),
    ],
)
def test_mcd_patterns_rejects_bad_settings(tmp_path: Path, content: str, message: str) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(content)
    code, out, err = run(["--settings", str(settings_file)])
    assert code == 2 and out == ""
    assert message in err


def test_mcd_patterns_missing_file_and_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(["--settings", str(tmp_path / "absent.json")])
    assert code == 2 and "cannot read settings file" in err
    assert run(["--bogus"])[0] == 2
    assert run(["--help"])[0] == 0
    capsys.readouterr()


# --- its parts ---------------------------------------------------------------------------------


def test_without_a_file_the_rules_are_the_defaults(tmp_path: Path) -> None:
    assert patterns_cmd.load_rules(None) == DirectRules()
    empty = tmp_path / "settings.json"
    empty.write_text("{}")
    assert patterns_cmd.load_rules(str(empty)) == DirectRules(), "a settings file without direct_rules"
    with pytest.raises(ConfigurationError, match="cannot read settings file"):
        patterns_cmd.load_rules(str(tmp_path))  # a folder


def test_render_holds_the_pattern_its_notes_and_the_rules() -> None:
    rules = DirectRules.from_mapping(SEED_002_RULES)
    pattern, notes = cloudwatch_logs_filter(rules)
    assert patterns_cmd.render(rules) == {"cloudwatch_logs_filter_pattern": pattern,
                                          "cloudwatch_logs_notes": list(notes),
                                          "eventbridge_patterns": eventbridge_patterns(rules)}


def test_the_text_says_where_a_pattern_is_wider_than_the_rules(tmp_path: Path) -> None:
    rules = {"include": ["Create*Policy*"]}  # an inner star: CloudWatch Logs can only match wider
    assert cloudwatch_logs_filter(DirectRules.from_mapping(rules))[1], "this rule needs a note"
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"direct_rules": rules}))
    code, out, _err = run(["--settings", str(settings_file)])
    assert code == 0
    notes = [line for line in out.splitlines() if line.startswith("# wider than the rules: ")]
    assert notes and all(n.removeprefix("# wider than the rules: ") for n in notes)
    size = len(cloudwatch_logs_filter_pattern(DirectRules.from_mapping(rules)))
    assert f"({size}/{CWL_MAX_PATTERN} characters)" in out.splitlines()[0]
    assert f"# EventBridge event patterns: {len(eventbridge_patterns(DirectRules.from_mapping(rules)))} rule(s)" in out
