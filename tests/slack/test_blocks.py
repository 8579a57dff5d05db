"""Block builders: each block is cut to Slack's limit without breaking mrkdwn, and the minimal fallback blocks."""

from __future__ import annotations

import re

import pytest

from chalicelib.core.severity import HIGH, LOW, MEDIUM
from chalicelib.slack.blocks import SEVERITY_EMOJI, context, divider, fields, header, minimal_blocks, section
from chalicelib.slack.limits import check_limits

PARTIAL_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")
LINK = "<https://console.aws.amazon.com/ec2/home?region=us-east-1#SecurityGroup:groupId=sg-1|sg-1 &amp; web>"


@pytest.mark.parametrize(("size", "shown"), [(149, 149), (150, 150), (151, 150), (5000, 150)])
def test_a_header_never_exceeds_slacks_150_characters(size: int, shown: int) -> None:
    block = header("h" * size)
    text = block["text"]["text"]
    assert len(text) == shown
    assert text.endswith("…") == (size > 150)
    assert block == {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def test_a_section_is_verbatim_mrkdwn_cut_to_3000_characters_without_half_an_entity() -> None:
    assert section("*bold* &amp; text") == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*bold* &amp; text", "verbatim": True},
    }
    text = section("a &amp; b &lt;c&gt; " * 300)["text"]["text"]
    assert len(text) <= 3000
    assert text.endswith("…")
    assert PARTIAL_ENTITY.search(text) is None


def test_a_cut_section_never_leaves_half_a_link() -> None:
    text = section("x" * 2950 + " " + LINK)["text"]["text"]
    assert text == "x" * 2950 + " …"
    assert "<" not in text


def test_fields_bold_their_labels_and_keep_at_most_ten() -> None:
    block = fields([(f"Label {n}", f"value {n}") for n in range(12)])
    assert block["type"] == "section"
    assert [f["text"] for f in block["fields"]] == [f"*Label {n}*\nvalue {n}" for n in range(10)]
    assert all(f["type"] == "mrkdwn" and f["verbatim"] is True for f in block["fields"])


def test_a_field_is_cut_to_2000_characters_keeping_links_whole() -> None:
    (field,) = fields([("Links", " · ".join([LINK] * 40))])["fields"]
    text = field["text"]
    assert len(text) <= 2000
    assert text.startswith("*Links*\n<https://") and text.endswith("…")
    assert text.count("<") == text.count(">"), "no link is left open"
    assert PARTIAL_ENTITY.search(text) is None


def test_context_drops_empty_texts_and_keeps_at_most_ten_elements() -> None:
    assert context("a", "", "b")["elements"] == [
        {"type": "mrkdwn", "text": "a", "verbatim": True},
        {"type": "mrkdwn", "text": "b", "verbatim": True},
    ]
    many = context(*(f"note {n}" for n in range(12)))
    assert [e["text"] for e in many["elements"]] == [f"note {n}" for n in range(10)]
    (long,) = context("&lt;" * 1000)["elements"]
    assert len(long["text"]) <= 2000 and long["text"].endswith("&lt;…")


def test_a_divider_is_a_bare_divider_block() -> None:
    assert divider() == {"type": "divider"}


def test_every_block_cut_to_its_limit_passes_the_per_block_checks() -> None:
    payload = {
        "text": "fallback",
        "blocks": [
            header("h" * 400),
            fields([(f"L{n}", "v" * 3000) for n in range(15)]),
            divider(),
            section("s" * 4000),
            context(*("c" * 2500 for _ in range(3))),
        ],
    }
    problems = check_limits(payload)
    # The message-wide total (10,000 characters) is the renderers' budget: a single block cannot know it.
    assert [p for p in problems if not p.startswith("total block text")] == []


def test_blocks_pass_slack_sdk_validation() -> None:
    from slack_sdk.models.blocks import Block

    for block in (header("h" * 400), section("s"), fields([("a", "b")]), context("c"), divider()):
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()


def test_minimal_blocks_keep_only_the_first_header_and_the_fallback_text() -> None:
    first, second = header("first"), header("second")
    payload = {"text": "[high] alice changed sg-1", "blocks": [section("body"), first, second, context("c")]}
    assert minimal_blocks(payload) == [first, section("[high] alice changed sg-1")]
    assert check_limits({"text": payload["text"], "blocks": minimal_blocks(payload)}) == []


def test_minimal_blocks_without_a_header_cut_a_long_fallback_to_a_valid_section() -> None:
    payload = {"text": "&amp;" * 2000, "blocks": [section("body")]}
    (only,) = minimal_blocks(payload)
    assert only["type"] == "section"
    assert len(only["text"]["text"]) <= 3000 and PARTIAL_ENTITY.search(only["text"]["text"]) is None


def test_each_severity_has_its_own_emoji() -> None:
    assert SEVERITY_EMOJI == {HIGH: ":rotating_light:", MEDIUM: ":warning:", LOW: ":information_source:"}
