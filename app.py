"""manual-change-detector: the Chalice app. Handlers only wire events to stages in ``chalicelib``."""

import os
import sys

from chalice import Chalice, Rate
from chalice.app import CloudWatchEvent, SNSEvent

from chalicelib import bootstrap, stage_config
from chalicelib.stages.shared.health import alive

app = Chalice(app_name="mcd")


class TolerantCloudWatchEvent(CloudWatchEvent):
    """Chalice's event class, minus its KeyError on an envelope without ``detail`` or ``version``."""

    def _extract_attributes(self, event_dict):
        defaults = {"version": "0", "account": "", "region": "", "detail": {}, "detail-type": "", "source": "",
                    "time": "", "id": "", "resources": []}
        super()._extract_attributes({**defaults, **(event_dict if isinstance(event_dict, dict) else {})})


class TolerantSNSEvent(SNSEvent):
    """Chalice's SNS event class, minus its KeyError on a record without ``Subject``."""

    def _extract_attributes(self, event_dict):
        try:
            super()._extract_attributes(event_dict)
        except (KeyError, IndexError, TypeError):
            self.message, self.subject = "", None

# Each handler imports only the stage it runs: a cold start compiles just what that function needs. After the
# stage returns, ``alive`` records a sign of life for the dead-man's switch (the ``watchdog`` schedule).

# Decorator arguments are fixed at deploy time; the stage's environment supplies them. The topic is the
# stage's own (config-changes-<stage>, as infra/stack.yaml names it) unless MCD_CONFIG_TOPIC names an
# existing one: scripts/deploy.py sets it in chalice's environment (docs/configuration.md).
CONFIG_TOPIC = stage_config.config_topic(os.environ)
SIGNIN_PATTERN = {"source": [{"prefix": "aws."}], "detail-type": ["AWS Console Sign In via CloudTrail"]}
API_CALL_PATTERN = {"source": [{"prefix": "aws."}], "detail-type": ["AWS API Call via CloudTrail"]}
CONFIG_CHANGE_PATTERN = {"source": ["aws.config"], "detail-type": ["Config Configuration Item Change"]}


@app.on_sns_message(topic=CONFIG_TOPIC)
def ingest(event):
    from chalicelib.stages.ingest import ingest as ingest_notification

    deps = bootstrap.deps(event.context)
    return alive(deps, "config", ingest_notification(event.to_dict(), deps))


# On unless MCD_CONFIG_VIA_EVENTBRIDGE=0: other regions' Config changes arrive only this way (infra/region.yaml
# forwards them); the home region's arrive by SNS too, and dispatch queues each change once (D28).
if os.environ.get("MCD_CONFIG_VIA_EVENTBRIDGE", "1") != "0":

    @app.on_cw_event(CONFIG_CHANGE_PATTERN)
    def config_event(event):
        from chalicelib.stages.ingest import config_event_as_sns
        from chalicelib.stages.ingest import ingest as ingest_notification

        deps = bootstrap.deps(event.context)
        return alive(deps, "config", ingest_notification(config_event_as_sns(event.to_dict()), deps))

    config_event.event_class = TolerantCloudWatchEvent


@app.schedule(Rate(1, unit=Rate.MINUTES))
def dispatch(event):
    from chalicelib.stages.dispatch import dispatch as dispatch_notifications

    deps = bootstrap.deps(event.context)
    return alive(deps, "dispatch", dispatch_notifications(deps))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def lookup(event):
    from chalicelib.stages.lookup import lookup as attribute_changes

    deps = bootstrap.deps(event.context)
    return alive(deps, "lookup", attribute_changes(deps))


@app.schedule(Rate(10, unit=Rate.MINUTES))
def dl_retry(event):
    from chalicelib.stages.dead_letters import dl_retry as retry_dead_letters
    from chalicelib.stages.reruns import RERUNS

    deps = bootstrap.deps(event.context)
    return alive(deps, "dl_retry", retry_dead_letters(deps, RERUNS))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def slack_send(event):
    from chalicelib.stages.deliver import slack_send as send_to_slack

    deps = bootstrap.deps(event.context)
    return alive(deps, "slack_send", send_to_slack(deps))


@app.schedule(Rate(5, unit=Rate.MINUTES))
def watchdog(event):
    from chalicelib.stages.watchdog import watchdog as check_signs_of_life

    return check_signs_of_life(bootstrap.deps(event.context))


@app.on_cw_event(SIGNIN_PATTERN)
def console_signin(event):
    from chalicelib.stages.direct import direct

    deps = bootstrap.deps(event.context)
    return alive(deps, "cloudtrail", direct(event.to_dict(), deps, "eventbridge"))


@app.on_cw_event(API_CALL_PATTERN)
def api_call(event):
    from chalicelib.stages.direct import direct

    deps = bootstrap.deps(event.context)
    return alive(deps, "cloudtrail", direct(event.to_dict(), deps, "eventbridge"))


@app.lambda_function()
def cloudwatch_logs(event, context):
    from chalicelib.stages.direct import direct

    deps = bootstrap.deps(context)
    return alive(deps, "cloudtrail", direct(event, deps, "cloudwatch_logs"))


# Bad input is normal input: the stage code decides what to do with an odd envelope, not Chalice.
for _handler in (console_signin, api_call):
    _handler.event_class = TolerantCloudWatchEvent
ingest.event_class = TolerantSNSEvent

if stage_config.building_the_local_stage(os.environ, sys.argv):
    raise SystemExit("mcd: the local stage is for `chalice local` only and cannot be packaged or deployed; "
                     "use --stage dev or --stage prod (docs/deployment.md)")

if stage_config.local_routes_wanted(os.environ, sys.argv):  # chalice local --stage local only
    # The one place deployed code names the tools: the Lambda package has none (tests/e2e/test_package.py),
    # only the local stage sets MCD_LOCAL_ROUTES, and that stage is never packaged or deployed (above).
    from mcd_tools.local_routes import local  # noqa: TID251

    app.register_blueprint(local)
