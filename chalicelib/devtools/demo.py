"""``make demo``: replay a realistic story through the real pipeline and show what people would see."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.devtools.replay import run, summary, write_outputs
from chalicelib.devtools.story import demo_story

WIDTH = 100


def blocks_to_text(payload: dict[str, Any]) -> str:
    """A terminal rendering of a Block Kit message: header, sections, fields, context."""
    lines: list[str] = []
    for block in payload.get("blocks") or []:
        kind = block.get("type")
        if kind == "header":
            lines.append("# " + _plain(block["text"]["text"]))
        elif kind == "section":
            if block.get("text"):
                lines.extend(_mrkdwn(block["text"]["text"]).splitlines())
            for field in block.get("fields") or []:
                lines.append("  " + _mrkdwn(field["text"]).replace("\n", " "))
        elif kind == "context":
            lines.append("  " + "  ·  ".join(_mrkdwn(e.get("text", "")) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("-" * 40)
    if not lines:
        lines.append(_mrkdwn(payload.get("text", "")))
    return "\n".join(lines)


def _plain(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _mrkdwn(text: str) -> str:
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]*)>", r"\2", text)
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    return _plain(text.replace("```", ""))


def main(argv: list[str] | None = None) -> int:
    story = demo_story()
    print(f"Replaying '{story['name']}':\n  {story['description']}\n")
    started = time.perf_counter()
    result = run(story)
    elapsed = time.perf_counter() - started
    out = Path("out")
    write_outputs(result, out / "demo")
    (out / "demo" / "scenario.json").write_text(json.dumps(story, indent=1))
    print("Outcomes (simulated time):")
    for outcome in sorted(result.outcomes, key=lambda o: (o["at"], o["kind"])):
        who = outcome.get("principal_arn") or "-"
        what = f"{outcome.get('resource_type') or outcome.get('event_name')} {outcome.get('resource_id') or ''}"
        print(f"  {outcome['at']}  {outcome['kind']:<20} {what.strip():<48} {who}")
    print(f"\nSlack messages posted ({len(result.slack)}):")
    for message in result.slack:
        print("=" * WIDTH)
        print(f"[{message['at']} → {message['destination']}]")
        print(blocks_to_text(message["payload"]))
    print("=" * WIDTH)
    print(f"\n{summary(result)}")
    print(f"Replayed {story['start']} → {story['end']} in {elapsed:.1f} s. Files: out/demo/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
