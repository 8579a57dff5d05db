"""Text safety: escaping, invisible characters, text that would become a link, and cuts that keep mrkdwn whole."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_fixtures import assert_valid, hostile_outcome, plain_texts, read

from chalicelib.core.outcomes import MANUAL_CHANGE
from chalicelib.core.text import one_line
from chalicelib.slack.render import render
from chalicelib.slack.text import cut, esc, escape_mrkdwn, plain


def test_escape_mrkdwn() -> None:
    assert escape_mrkdwn("<!here> & <x|y>") == "&lt;!here&gt; &amp; &lt;x|y&gt;"


def test_every_format_character_and_invisible_filler_is_removed() -> None:
    import sys
    import unicodedata

    invisible = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in ("Cf", "Cs")]
    invisible += ["\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u180b", "\u3164", "\uffa0", "\ufffe"]
    assert "\u00ad" in invisible and "\u061c" in invisible
    assert one_line("".join(invisible)) == ""
    assert one_line("ad\u00admin\u061c-role") == "admin-role"
    payload = render([hostile_outcome(MANUAL_CHANGE, "ro\u00adot \u061c\u202eexe.txt\u202c \u2066@\u00adhere\u2069")])
    assert_valid(payload)
    assert "root" in read(plain_texts(payload)[0])


@pytest.mark.parametrize(("text", "shown"), [
    ("https://evil.example/login", "https:\u2044\u2044evil\u2024example/login"),
    ("see www.evil.zip now", "see www\u2024evil\u2024zip now"),
    ("mallory@evil.example", "mallory@evil\u2024example"),
    ("EVIL.COM", "EVIL\u2024COM"),
    ("evil\uff0eexample", "evil\u2024example"),
    ("slack://open", "slack:\u2044\u2044open"),
    ("10.0.0.0/16 and v2.15.0", "10.0.0.0/16 and v2.15.0"),  # numbers keep their dots
    ("arn:aws:s3:::logs", "arn:aws:s3:::logs"),
])
def test_event_text_never_becomes_a_link(text: str, shown: str) -> None:
    assert esc(text, 200) == shown
    assert plain(text, 200) == shown
    assert len(shown) == len(text), "same length: budgets are unchanged"
    assert read(shown) == text.replace("\uff0e", "."), "reads as typed"


def test_cut_never_leaves_half_an_entity_a_link_or_a_code_span() -> None:
    assert cut("abc &amp; def", 8) == "abc …"
    assert cut("abc &lt;!here&gt;", 7) == "abc …"
    assert cut("x <https://a.example|b> y", 10) == "x …"
    assert cut("a `code` b", 6) == "a …"
    assert cut("```abc``` tail", 8) == "…"
    assert cut("short", 10) == "short"


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab &<>`|", max_size=60).map(escape_mrkdwn), limit=st.integers(1, 60))
def test_property_cut_text_is_still_well_formed(text: str, limit: int) -> None:
    shortened = cut(text, limit)
    assert len(shortened) <= max(limit, 1)
    assert re.search(r"&(?!amp;|lt;|gt;)", shortened) is None, shortened
    assert "<" not in shortened and ">" not in shortened
