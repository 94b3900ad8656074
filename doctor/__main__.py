"""python -m doctor [COMMAND] [...]: the commands and one line each (`--help`); `check` when none
is named."""

from __future__ import annotations

import sys

# name -> (module whose main(argv) runs it, the one line `--help` shows)
COMMANDS = {
    "check": ("doctor.check", "what breaks a QLoRA/XTuner run on this machine, and the fix "
                              "(the default)"),
    "fit": ("doctor.fit", "a config's peak GPU memory, before anything is downloaded"),
    "report": ("doctor.report", "the machine's facts and every finding as one redacted "
                                "Markdown block for a bug report"),
    "fix": ("doctor.fix", "apply the fixes that change only this environment (dry run; "
                          "--yes applies), then check again"),
    "preflight": ("doctor.preflight", "what `xtuner train CONFIG` checks before it starts, "
                                      "without starting it"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m doctor [COMMAND] [options]", "",
             "The environment doctor of the XTuner 8 GB pack.", "", "commands:"]
    lines += [f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    lines += ["", "`python -m doctor COMMAND --help` shows a command's options; with no command "
              "it runs `check`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"], ["help"]):
        print(usage())
        return 0
    name = argv[0] if argv and argv[0] in COMMANDS else "check"
    rest = argv[1:] if argv and argv[0] in COMMANDS else argv
    module = __import__(COMMANDS[name][0], fromlist=["main"])
    try:
        return module.main(rest)
    except BrokenPipeError:  # `python -m doctor ... | head`: the reader left, nothing is wrong
        import os

        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes it at exit)
        return 0


if __name__ == "__main__":
    sys.exit(main())
