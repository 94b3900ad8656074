"""Imported by the `.pth` file at every interpreter start: registers the startup patches.

It must stay cheap and must never break Python's start-up, whatever state the environment is in.
"""

try:
    from patches import enable_startup

    enable_startup()
except Exception as exc:  # a broken patch must not take the interpreter down with it
    import sys

    print(f"xtuner-8gb-pack: patches not applied: {exc!r}", file=sys.stderr)
