"""python -m doctor [check] [...] | python -m doctor fit CONFIG [...] | python -m doctor report"""

from __future__ import annotations

import sys

COMMANDS = {
    "check": "doctor.check",  # environment checks (the default)
    "fit": "doctor.fit",  # memory estimate of a config
    "report": "doctor.bug_report",  # one redacted Markdown block (or --json) for a bug report
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    name = argv[0] if argv and argv[0] in COMMANDS else "check"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    module = __import__(COMMANDS[name], fromlist=["main"])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
