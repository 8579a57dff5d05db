"""``chalice local --stage local`` shows the main feature with no AWS account (docs/deployment.md).

The real ``chalice local`` runs as a subprocess, started as the docs say, from an environment without the
test suite's set-up (no ``MCD_*`` or ``AWS_*`` variables). The docs' example notification is posted over
HTTP; the local stage's embedded AWS, its file-backed CloudTrail (``examples/cloudtrail-events.json``)
and its ticker must turn it into a manual-change alert in the Slack stand-in, naming the person behind
the SSO session, with the diff and console links.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHALICE = Path(sys.executable).with_name("chalice")
AUTHOR = "priya.natarajan@example.com"
GROUP = "sg-0f3e2d1c0b9a87654"
CALL_EVENT_ID = "6f2d7e1a-93c4-4b8e-a1d5-0c9e8f7b6a52"
DOT_LEADER = "\u2024"  # alerts write the dots of names as this, so Slack makes no link of them

pytestmark = pytest.mark.skipif(not CHALICE.exists(), reason=f"chalice is not installed beside {sys.executable}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, body: bytes | None = None, timeout: float = 60) -> Any:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        data = reply.read().decode()
        return json.loads(data) if reply.headers.get_content_type() == "application/json" else data


def _wait_until_serving(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"chalice local exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"chalice local did not listen on {port} within 30 s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``chalice local --stage local --no-autoreload --port P`` in its own process group, killed afterwards."""
    port = _free_port()
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("MCD_", "AWS_"))}
    log = tmp_path / "chalice-local.log"
    with log.open("wb") as output:
        proc = subprocess.Popen([str(CHALICE), "local", "--stage", "local", "--no-autoreload", "--port", str(port)],
                                cwd=ROOT, env=shell, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_serving(port, proc, log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _texts(node: Any) -> list[str]:
    """Every ``text`` of a Block Kit payload, with the dot leaders read as dots."""
    if isinstance(node, dict):
        own = [node["text"].replace(DOT_LEADER, ".")] if isinstance(node.get("text"), str) else []
        return own + [t for value in node.values() for t in _texts(value)]
    if isinstance(node, list):
        return [t for value in node for t in _texts(value)]
    return []


def test_the_example_notification_becomes_a_manual_change_alert_naming_its_author(
        local_server: tuple[str, Path]) -> None:
    base, log = local_server
    # The first request starts the embedded AWS, the stack, the Slack stand-in and the ticker.
    assert _call(f"{base}/local/slack?format=json") == {"messages": []}, log.read_text()[-3000:]
    posted = time.monotonic()
    notification = (EXAMPLES / "config-notification.json").read_bytes()
    assert _call(f"{base}/local/sns", notification) == {"queued": 1, "dead_lettered": 0}

    alerts: list[dict[str, Any]] = []
    while not alerts and time.monotonic() - posted < 30:  # the ticker runs the schedules every second
        time.sleep(0.25)
        alerts = _call(f"{base}/local/slack?format=json")["messages"]
    assert alerts, f"no alert within 30 s:\n{log.read_text()[-3000:]}"
    [alert] = alerts
    texts = _texts(alert["payload"])
    [header] = _texts(next(b for b in alert["payload"]["blocks"] if b["type"] == "header"))
    assert header.endswith(f"{AUTHOR} changed {GROUP} (web-sg) by hand"), header
    assert any(t.startswith(f"*Person*\n{AUTHOR} (AssumedRole)\n`arn:aws:sts::") for t in texts), texts
    assert any(t.startswith("*What changed* (1 property)") and "+ tcp 22 from 0.0.0.0/0" in t for t in texts), texts
    links = " ".join(texts)
    assert f"https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#SecurityGroup:groupId={GROUP}" in links
    assert f"https://eu-west-1.console.aws.amazon.com/cloudtrail/home?region=eu-west-1#/events/{CALL_EVENT_ID}" in links
    assert alert["destination"] == "default" and alert["method"] == "webhook"

    # The ticker left nothing to do; the state table holds the outcome; the stand-in's page shows the alert.
    assert _call(f"{base}/local/tick", b"")["slack_send"]["posted"] == 0
    outcomes = _call(f"{base}/local/state?prefix=out%23")["items"]
    assert [o["kind"] for o in outcomes] == ["manual_change"]
    page = _call(f"{base}/local/slack")
    assert "by hand" in page and "No messages." not in page
    assert len(_call(f"{base}/local/slack?format=json")["messages"]) == 1, "one alert, posted once"
