"""An HTML page that lays Slack messages out the way Slack does (header, fields, diff, links, colours).

Slack's mrkdwn is converted to HTML here: ``*bold*``, ``_italic_``, `` `code` ``, fenced blocks,
``<url|label>`` links and ``<!date^…|fallback>`` dates. Text arrives already escaped for mrkdwn
(``&amp; &lt; &gt;``), which is also what HTML needs, so nothing from an event can become markup.
"""

from __future__ import annotations

import html
import re
from typing import Any

SEVERITY_COLOURS = {"high": "#e01e5a", "medium": "#ecb22e", "low": "#2eb67d"}
EMOJI = {":rotating_light:": "\U0001F6A8", ":warning:": "\u26A0\uFE0F", ":information_source:": "\u2139\uFE0F",
         ":white_check_mark:": "\u2705", ":lock:": "\U0001F512", ":key:": "\U0001F511"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; background: #f8f8f8; margin: 0; }}
.channel {{ max-width: 860px; margin: 24px auto; background: #fff; border: 1px solid #ddd; border-radius: 8px; }}
.channel h1 {{ font-size: 18px; margin: 0; padding: 14px 20px; border-bottom: 1px solid #ddd; }}
.message {{ display: flex; padding: 14px 20px; border-bottom: 1px solid #f0f0f0; }}
.avatar {{ width: 36px; height: 36px; border-radius: 6px; background: #4a154b; color: #fff; font-weight: 700;
          display: flex; align-items: center; justify-content: center; margin-right: 10px; flex: none; }}
.body {{ flex: 1; min-width: 0; }}
.meta {{ font-size: 13px; color: #616061; margin-bottom: 4px; }} .meta b {{ color: #1d1c1d; }}
.card {{ border-left: 4px solid #ddd; padding-left: 12px; }}
.header {{ font-size: 17px; font-weight: 700; margin: 4px 0 8px; }}
.section {{ font-size: 15px; line-height: 1.45; margin: 6px 0; white-space: pre-wrap; }}
.fields {{ display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 6px 24px; font-size: 15px;
          margin: 6px 0; }}
.fields div, .section, .context {{ overflow-wrap: anywhere; }}
.context {{ font-size: 12px; color: #616061; margin: 6px 0; }}
.divider {{ border: 0; border-top: 1px solid #e8e8e8; margin: 8px 0; }}
code {{ font-family: Menlo, Consolas, monospace; font-size: 12px; background: #f4f4f4; border: 1px solid #e0e0e0;
        border-radius: 3px; padding: 1px 3px; color: #c01343; }}
pre {{ font-family: Menlo, Consolas, monospace; font-size: 12px; background: #f8f8f8; border: 1px solid #e0e0e0;
       border-radius: 4px; padding: 8px; white-space: pre-wrap; margin: 4px 0; }}
a {{ color: #1264a3; text-decoration: none; }}
</style></head><body><div class="channel"><h1>#{channel}</h1>
{messages}
</div></body></html>
"""


def render_preview_html(messages: list[dict[str, Any]], *, channel: str = "aws-changes",
                        title: str = "mcd — Slack preview") -> str:
    """``messages``: ``{"at", "destination", "payload"}`` as ``slack.jsonl`` holds them."""
    parts = [_message(m) for m in messages] or ['<div class="message"><div class="body">No messages.</div></div>']
    return _PAGE.format(title=html.escape(title), channel=html.escape(channel), messages="\n".join(parts))


def _message(message: dict[str, Any]) -> str:
    payload = message.get("payload") or {}
    colour = _colour(payload)
    blocks = "\n".join(_block(b) for b in payload.get("blocks") or []) or (
        f'<div class="section">{mrkdwn_to_html(str(payload.get("text", "")))}</div>')
    when = html.escape(str(message.get("at", "")))
    dest = html.escape(str(message.get("destination", "")))
    return (f'<div class="message"><div class="avatar">mcd</div><div class="body">'
            f'<div class="meta"><b>manual-change-detector</b> APP &nbsp;{when} → {dest}</div>'
            f'<div class="card" style="border-left-color:{colour}">{blocks}</div></div></div>')


def _colour(payload: dict[str, Any]) -> str:
    text = str(payload.get("text", ""))
    for level, colour in SEVERITY_COLOURS.items():
        if text.startswith(f"[{level}]"):
            return colour
    for attachment in payload.get("attachments") or []:
        if isinstance(attachment, dict) and isinstance(attachment.get("color"), str):
            return html.escape(attachment["color"])
    return "#ddd"


def _block(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="header">{html.escape(_plain(block.get("text", {}).get("text", "")))}</div>'
    if kind == "section":
        out = ""
        if block.get("text"):
            out += f'<div class="section">{_text(block["text"])}</div>'
        if block.get("fields"):
            out += '<div class="fields">' + "".join(f"<div>{_text(f)}</div>" for f in block["fields"]) + "</div>"
        return out
    if kind == "context":
        return '<div class="context">' + " &nbsp;·&nbsp; ".join(_text(e) for e in block.get("elements") or []
                                                               if isinstance(e, dict) and "text" in e) + "</div>"
    if kind == "divider":
        return '<hr class="divider">'
    return ""


def _text(obj: dict[str, Any]) -> str:
    text = str(obj.get("text", ""))
    return mrkdwn_to_html(text) if obj.get("type") == "mrkdwn" else html.escape(_plain(text))


def _plain(text: str) -> str:
    return _emoji(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def _emoji(text: str) -> str:
    return re.sub(r":[a-z_]+:", lambda m: EMOJI.get(m.group(0), m.group(0)), text)


def mrkdwn_to_html(text: str) -> str:
    """Slack mrkdwn (already ``&<>``-escaped) to HTML; quotes are escaped too."""
    text = text.replace('"', "&quot;")
    blocks: list[str] = []

    def stash(match: re.Match[str]) -> str:
        blocks.append(f"<pre>{match.group(1).strip(chr(10))}</pre>")
        return f"\x00{len(blocks) - 1}\x00"

    text = re.sub(r"```(.*?)```", stash, text, flags=re.S)
    text = re.sub(r"&lt;!date\^\d+\^[^|]*\|(.*?)&gt;|<!date\^\d+\^[^|>]*\|([^>]*)>",
                  lambda m: m.group(1) or m.group(2) or "", text)
    text = re.sub(r"<(https?://[^|>\s]+)\|([^>]*)>", r'<a href="\1">\2</a>', text)
    text = re.sub(r"<(https?://[^|>\s]+)>", r'<a href="\1">\1</a>', text)
    text = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", text)
    text = _emoji(text)
    return re.sub(r"\x00(\d+)\x00", lambda m: blocks[int(m.group(1))], text)
