"""`make demo`'s embedded AWS: a moto server, the real stack, and the story through deployed resources."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from scenario_check import differences

from mcd_tools.embedded import deploy_stack, embedded_aws, env_name, environment_from
from mcd_tools.replay import run
from mcd_tools.story import demo_story


def test_output_names_map_to_the_environment_variables() -> None:
    assert env_name("McdDispatchDlqUrl") == "MCD_DISPATCH_DLQ_URL"
    assert env_name("McdSlackSecret") == "MCD_SLACK_SECRET"


def test_the_demo_story_runs_through_a_deployed_stack_and_leaves_nothing_running() -> None:
    story = demo_story()
    region = story["home_region"]
    with embedded_aws(region) as endpoint:
        variables = deploy_stack(region)
        assert variables["MCD_DISPATCH_QUEUE_URL"].endswith("/mcd-local-dispatch"), variables
        result = run(story, environment=environment_from(variables, region))
    assert differences(story["expect"]["outcomes"], result.outcomes) == []
    assert len(result.slack) <= story["expect"]["max_slack_messages"]
    assert "AWS_ENDPOINT_URL" not in os.environ
    port = urlparse(endpoint).port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the embedded AWS must be stopped"
