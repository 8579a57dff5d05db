"""``make demo``: replay a realistic story through the real pipeline and show what people would see."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from chalicelib.core.timeutil import parse_time
from mcd_tools.replay import run, summary, write_outputs
from mcd_tools.story import demo_org_story

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


def show(result: Any) -> None:
    """Print a replay's outcomes and its Slack messages the way a person would read them."""
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


ALERT_KINDS = ("manual_change", "unattributed_change", "console_signin", "api_call")


def by_account(story: dict[str, Any], result: Any) -> list[str]:
    """One line per account of the story: its alerts and suppressions, and how its CloudTrail was read (the home
    account's directly, a member's through the lookup role assumed there)."""
    settings = story.get("settings") or {}
    role = settings.get("lookup_role") or "mcd-lookup"
    home = str(story.get("home_account") or "")
    lines = []
    for account in [home, *(settings.get("accounts") or [])]:
        mine = [o for o in result.outcomes if o.get("account") == account]
        alerts = [o for o in mine if o["kind"] in ALERT_KINDS]
        authors = sorted({o["principal_arn"] for o in alerts if o.get("principal_arn")})
        how = "home account, its own CloudTrail" if account == home else f"member, CloudTrail read as role {role}"
        lines.append(f"  {account} ({how}): {len(alerts)} alert{'s' * (len(alerts) != 1)}, "
                     f"{sum(o['kind'] == 'suppressed' for o in mine)} suppressed"
                     + (f"; authors: {', '.join(a.rsplit('/', 1)[-1] for a in authors)}" if authors else ""))
    return lines


def from_stream(story: dict[str, Any], result: Any) -> list[str]:
    """One line per alert decided before ``LookupEvents`` could show its call: its author came from the live
    CloudTrail stream (EventBridge to ``api_call``, the recent-calls index), not from the event history."""
    visible = {e["record"]["eventID"]: e["visible_at"] for e in story.get("cloudtrail") or []}
    lines = []
    for outcome in result.outcomes:
        if outcome.get("kind") != "manual_change":
            continue
        first = str(outcome.get("first_at") or outcome.get("at") or "")
        shown = [visible[e] for e in outcome.get("event_ids") or [] if e in visible]
        if shown and first < min(shown):
            minutes = (_seconds(min(shown)) - _seconds(first)) / 60
            lines.append(f"  {outcome.get('resource_id')} by {str(outcome.get('principal_arn')).rsplit('/', 1)[-1]}: "
                         f"told at {first[11:19]}, {minutes:.0f} min before CloudTrail's event history showed the call")
    return lines


def _seconds(text: str) -> float:
    found = parse_time(text)
    return found.timestamp() if found else 0.0


def main(argv: list[str] | None = None) -> int:
    from mcd_tools.embedded import (
        chalice_deploy,
        deploy_stack,
        deployed_resources,
        embedded_aws,
        environment_from,
    )
    from mcd_tools.preview import render_preview_html

    args = sys.argv[1:] if argv is None else argv
    story = demo_org_story()
    region = story["home_region"]
    out = Path("out")
    started = time.perf_counter()
    print(f"Replaying '{story['name']}':\n  {story['description']}\n")
    with embedded_aws(region) as endpoint:
        print(f"[1/4] embedded AWS (moto server) at {endpoint}")
        variables = deploy_stack(region)
        print(f"[2/4] CloudFormation stack mcd-local from infra/stack.yaml: {len(variables)} outputs")
        if "--no-chalice" not in args:
            ok, log_tail = chalice_deploy(variables, region)
            if ok:
                resources = deployed_resources(region)
                print(f"[3/4] chalice deploy --stage local: {len(resources['functions'])} functions, "
                      f"{len(resources['rules'])} EventBridge rules, SNS → "
                      f"{', '.join(resources['subscriptions']) or 'no subscription'}")
            else:
                print("[3/4] chalice deploy --stage local FAILED (the pipeline still runs in-process):")
                print("      " + log_tail.replace("\n", "\n      "))
        result = run(story, environment=environment_from(variables, region))
        print(f"[4/4] story driven through the deployed queues, bucket, table and secret "
              f"(simulated {story['start']} → {story['end']})\n")
    elapsed = time.perf_counter() - started
    write_outputs(result, out / "demo")
    (out / "demo" / "scenario.json").write_text(json.dumps(story, indent=1))
    (out / "slack-preview.html").write_text(render_preview_html(result.slack))
    show(result)
    print(f"\n{summary(result)}")
    print("Accounts of the organisation:\n" + "\n".join(by_account(story, result)))
    streamed = from_stream(story, result)
    if streamed:
        print("Attributed from the live CloudTrail stream (before the event history had the call):\n"
              + "\n".join(streamed))
    print(f"Done in {elapsed:.1f} s; the embedded AWS is stopped. Files: out/demo/, out/slack-preview.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
