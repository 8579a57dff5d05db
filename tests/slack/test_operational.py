"""Dead-letter operational alerts: one message per batch, counts per queue and reason, safe lines, the line limit."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from slack_fixtures import manual

from chalicelib.core.outcomes import DEAD_LETTER, Outcome
from chalicelib.slack.limits import check_limits
from chalicelib.slack.operational import MAX_LINES, QUEUE_LABELS, is_operational, render_operational
from chalicelib.stages.shared.queues import ASYNC_FAILED_QUEUE, DEAD_LETTER_QUEUES

STORED = ("<https://s3.console.aws.amazon.com/s3/object/mcd-archive?prefix=dead-letter%2Fdispatch_queue%2F0.json"
          "|stored message>")


def dead_letter(n: int = 0, **overrides: Any) -> Outcome:
    values: dict[str, Any] = {
        "kind": DEAD_LETTER, "outcome_id": f"dl:{n}", "at": f"2024-05-01T12:00:{n:02d}Z",
        "reason": "not a Config notification", "archive_bucket": "mcd-archive",
        "archive_key": f"dead-letter/dispatch_queue/{n}.json", "extra": {"queue": "dispatch_queue"},
    }
    values.update(overrides)
    return Outcome(**values)


def texts(payload: dict[str, Any]) -> list[str]:
    """The header, every section and context text, and the fallback."""
    found = [payload["text"]]
    for block in payload["blocks"]:
        found += [block["text"]["text"]] if "text" in block else [e["text"] for e in block["elements"]]
    return found


def test_only_a_non_empty_batch_of_dead_letters_is_operational() -> None:
    assert is_operational([dead_letter(), dead_letter(1)]) is True
    assert is_operational([]) is False
    assert is_operational([dead_letter(), manual()]) is False
    assert is_operational([object()]) is False


def test_a_batch_without_dead_letters_is_refused() -> None:
    for batch in ([], [manual()]):
        with pytest.raises(ValueError, match="no operational alerts"):
            render_operational(batch)


def test_one_dead_letter_is_one_message_linking_to_the_stored_object() -> None:
    payload = render_operational([dead_letter()])
    assert check_limits(payload) == []
    assert payload["text"] == "mcd: 1 dead letter kept for a person (1 dispatch_queue)"
    assert payload["unfurl_links"] is False and payload["unfurl_media"] is False
    header, summary, reasons, listing, footer = payload["blocks"]
    assert header["text"] == {"type": "plain_text", "text": ":rotating_light: mcd: 1 dead letter kept for a person",
                              "emoji": True}
    assert summary["text"]["text"].startswith("*1* Config notification (dispatch). Each is stored")
    assert reasons["text"]["text"] == "*Reasons*\n• 1 × not a Config notification"
    assert listing["text"]["text"] == f"• *Config notification (dispatch)*: not a Config notification — {STORED}"
    assert "not a change in your estate" in footer["elements"][0]["text"]
    assert all(b["text"]["verbatim"] is True for b in (summary, reasons, listing))


def test_queues_are_counted_under_their_labels_most_frequent_first() -> None:
    queues = ["dispatch_queue", "lookup_queue", "lookup_queue", "slack_queue", "other_queue"]
    payload = render_operational([dead_letter(n, extra={"queue": q}) for n, q in enumerate(queues)])
    assert payload["blocks"][0]["text"]["text"] == ":rotating_light: mcd: 5 dead letters kept for a person"
    assert payload["blocks"][1]["text"]["text"].startswith(
        f"*2* {QUEUE_LABELS['lookup_queue']}, *1* {QUEUE_LABELS['dispatch_queue']}, "
        f"*1* {QUEUE_LABELS['slack_queue']}, *1* other_queue. ")
    assert payload["text"].endswith("(1 dispatch_queue, 2 lookup_queue, 1 slack_queue, 1 other_queue)")
    assert "*Config notification (dispatch)*" in payload["blocks"][3]["text"]["text"]
    assert "*unknown queue*" in render_operational([dead_letter(extra={})])["blocks"][3]["text"]["text"]


def test_every_queue_a_dead_letter_comes_from_has_a_label_even_lambdas_async_failures() -> None:
    assert set(QUEUE_LABELS) == {*DEAD_LETTER_QUEUES.values(), ASYNC_FAILED_QUEUE}
    alert = dead_letter(reason="mcd-prod-ingest failed (RetriesExhausted after 3 tries): KeyError: 'x'",
                        archive_key="dead-letter/async_failed_queue/2024/5/1/mcd-prod-ingest-r1.json",
                        extra={"queue": ASYNC_FAILED_QUEUE})
    payload = render_operational([alert])
    assert payload["blocks"][1]["text"]["text"].startswith("*1* event a function failed on (async-failed). ")
    assert payload["blocks"][3]["text"]["text"].startswith(
        "• *event a function failed on (async-failed)*: mcd-prod-ingest failed (RetriesExhausted after 3 tries)")
    assert "async_failed_queue" not in payload["blocks"][1]["text"]["text"]


def test_equal_causes_are_counted_together_without_the_quoted_input() -> None:
    alerts = [dead_letter(0, reason="Config notification: JSON ends early (Expecting value): the text looks cut"),
              dead_letter(1, reason="Config notification: JSON ends early (Unterminated string)"),
              dead_letter(2, reason=None)]
    reasons = render_operational(alerts)["blocks"][2]["text"]["text"]
    assert reasons == "*Reasons*\n• 2 × Config notification: JSON ends early\n• 1 × no reason recorded"


def test_the_listing_stops_at_max_lines_oldest_first_and_says_how_many_more() -> None:
    alerts = [dead_letter(n, archive_bucket=None, archive_key=f"k{n}", reason="r") for n in range(MAX_LINES + 5)]
    lines = render_operational(alerts[::-1])["blocks"][3]["text"]["text"].split("\n")
    assert len(lines) == MAX_LINES + 1
    assert lines[0] == "• *Config notification (dispatch)*: r — stored at k0"
    assert lines[MAX_LINES - 1].endswith(f"stored at k{MAX_LINES - 1}")
    assert lines[-1] == "… and 5 more under `dead-letter/` in the archive bucket"


def test_hostile_text_is_escaped_defused_and_stripped_of_control_characters() -> None:
    hostile = "<!channel> @here @Everyone `x` \u202e\nnext & <@U1>"
    alert = dead_letter(reason=hostile, extra={"queue": "slack_queue", "undelivered": hostile,
                                              "still_reported": [hostile, 5, "@channel"]})
    payload = render_operational([alert])
    line = payload["blocks"][3]["text"]["text"]
    assert line.startswith("• *Slack alert not delivered*: &lt;!channel&gt; @\u2060here @\u2060Everyone ˋxˋ")
    assert "  next &amp; &lt;@U1&gt; — alert: &lt;!channel&gt;" in line
    assert ", @\u2060channel — <https://s3.console" in line
    for text in texts(payload):
        links_removed = re.sub(r"<https://s3\.console\.aws\.amazon\.com/[^\s<>|]*\|stored message>", "", text)
        assert "<" not in links_removed and ">" not in links_removed, text
        assert re.search(r"@(channel|here|everyone)\b", text, re.IGNORECASE) is None, text
        assert "\u202e" not in text and "`x`" not in text


def test_long_text_is_clipped_and_a_big_batch_stays_within_limits() -> None:
    huge = "&" * 5000
    alerts = [dead_letter(n % 60, outcome_id=f"dl:{n}", reason=huge,
                          extra={"queue": "slack_queue", "undelivered": huge, "still_reported": [huge] * 30})
              for n in range(120)]
    one = render_operational(alerts[:1])
    reason = one["blocks"][3]["text"]["text"].split(": ", 1)[1].split(" — ")[0]
    assert reason == "&amp;" * 31 + "…", "clipped to 160 characters after escaping, between entities"
    assert one["blocks"][3]["text"]["text"].count("…") == 5, "reason, alert and three still-reported items"
    assert "30 change(s) inside them are still reported" in one["blocks"][1]["text"]["text"]
    for batch in (alerts[:1], alerts):
        payload = render_operational(batch)
        assert check_limits(payload) == []
        assert json.loads(json.dumps(payload)) == payload


def test_a_gov_cloud_dead_letter_links_to_its_partitions_console() -> None:
    payload = render_operational([dead_letter(partition="aws-us-gov")])
    assert "<https://console.amazonaws-us-gov.com/s3/object/mcd-archive?prefix=" in payload["blocks"][3]["text"]["text"]


def test_queue_names_are_escaped_in_the_fallback_text_too() -> None:
    payload = render_operational([dead_letter(extra={"queue": "<!channel> @here"})])
    assert "<!channel>" not in payload["text"] and re.search(r"@here\b", payload["text"]) is None
    assert "&lt;!channel&gt;" in payload["text"]


def test_a_long_reasons_section_is_cut_between_entities() -> None:
    alerts = [dead_letter(outcome_id=f"dl:{i}", reason=chr(97 + i) + "&" * 300) for i in range(20)]
    reasons = render_operational(alerts)["blocks"][2]["text"]["text"]
    assert re.search(r"&(?!amp;|lt;|gt;)", reasons) is None, "no half entity"
