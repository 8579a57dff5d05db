"""The ``mcd`` command: ``explain``, ``replay``, ``patterns``, ``doctor`` and ``package``."""

from __future__ import annotations

import sys

USAGE = """usage: mcd COMMAND [ARGS]

commands:
  explain FILE...             show what the detector reads in AWS payloads (- for stdin)
  replay SCENARIO --out DIR   run the detector over a replay scenario on a simulated clock
  patterns [--settings FILE]  print the CloudWatch Logs filter and EventBridge patterns to install
  doctor --stage S [--region R]     check a deployed stage's whole chain and say how to fix what is broken
  package --stage S [--format sam|terraform] [--config-topic-arn ARN]
                              the app as a SAM template or Terraform configuration wired to the stack
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "explain":
        from mcd_tools.explain import main as run
    elif command == "replay":
        from mcd_tools.replay import main as run
    elif command == "patterns":
        from mcd_tools.patterns_cmd import main as run
    elif command == "doctor":
        from mcd_tools.doctor import main as run
    elif command == "package":
        from mcd_tools.package import main as run
    else:
        print(f"mcd: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
