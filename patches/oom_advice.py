"""A CUDA out-of-memory error in `xtuner train` ends in a wall of traceback that names no fix.

In the training tool's process (xtuner/tools/train.py, also each rank under torchrun), an
uncaught `torch.cuda.OutOfMemoryError` is reported instead as: torch's own first line (how much
was asked, how much is free), doctor fit's estimate for this config on this GPU, and the knobs
to turn, first first. The full traceback goes to a file whose path is printed; the exit status
stays non-zero. Any other exception is left to Python's usual report.
"""

from __future__ import annotations

import sys

TARGET = "mmengine.runner"
GiB = 2**30


def is_training_tool(argv: list[str]) -> bool:
    return bool(argv) and argv[0].replace("\\", "/").endswith("xtuner/tools/train.py")


def out_of_memory(exc: BaseException | None) -> BaseException | None:
    """The CUDA OOM in `exc` or its causes, or None."""
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    seen = set()
    while exc is not None and id(exc) not in seen and oom is not None:
        if isinstance(exc, oom):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def gpu_memory() -> tuple[float, str]:
    """GiB of the GPU this process trains on, and its label; an 8 GiB card without one."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            return props.total_memory / GiB, f"{props.name}, {props.total_memory / GiB:.2f} GiB"
    except Exception:  # noqa: BLE001 - a GPU that just ran out may refuse more questions
        pass
    return 8.0, "an 8 GiB card (no CUDA device in this process)"


def message(exc: BaseException, argv: list[str], traceback_file: str | None) -> list[str]:
    from doctor.preflight import (
        PREFIX,
        config_for_fit,
        estimate_text,
        fit_report,
        knob_lines,
        parse_train_args,
    )

    first = str(exc).strip().split("\n")[0]
    first = first if len(first) <= 300 else first[:297] + "..."
    run = parse_train_args(argv[1:])
    name = run.config if run else "this config"
    lines = [f"{PREFIX.split()[0]}: CUDA out of memory while training {name}.",
             f"  torch: {first}"]
    if run:
        import tempfile
        from pathlib import Path

        gpu, label = gpu_memory()
        try:
            with tempfile.TemporaryDirectory(prefix="xtuner-pack-oom.") as tmp:
                config = config_for_fit(run, Path(tmp))
                # its advice, when the top of the band fits: the knobs that save most
                report = fit_report(config, gpu_mem=gpu, deepspeed=run.deepspeed)
        except Exception as err:  # noqa: BLE001 - the advice must not hide the OOM
            lines.append(f"  (no doctor fit advice: {type(err).__name__}: {err})")
        else:
            verdict = "does not fit" if report.get("fits") is False else "fits by the estimate"
            lines.append(f"  doctor fit: {estimate_text(report)} on {label}: {verdict}.")
            knobs = knob_lines(report, indent="    ")
            if knobs:
                lines += ["  Turn these knobs in the config (or --cfg-options), first first:",
                          *knobs]
    lines.append("  Also: close other programs on the GPU (`nvidia-smi` lists them).")
    if traceback_file:
        lines.append(f"  Full traceback: {traceback_file}")
    return lines


def report_oom(exc_type, exc, tb, argv=None) -> bool:
    """Print the OOM report for `exc`; False when it is not a CUDA OOM."""
    oom = out_of_memory(exc)
    if oom is None:
        return False
    import tempfile
    import traceback

    path = None
    try:
        with tempfile.NamedTemporaryFile("w", prefix="xtuner-oom-", suffix=".txt",
                                         delete=False) as f:
            f.write("".join(traceback.format_exception(exc_type, exc, tb)))
            path = f.name
    except OSError:
        pass
    try:
        lines = message(oom, list(sys.argv if argv is None else argv), path)
    except Exception as err:  # noqa: BLE001
        lines = [f"CUDA out of memory: {str(oom).splitlines()[0] if str(oom) else ''}",
                 f"  (no advice: {type(err).__name__}: {err}); full traceback: {path}"]
    print("\n".join(lines), file=sys.stderr, flush=True)
    return True


def apply(_runner_module) -> None:
    if not is_training_tool(sys.argv) or getattr(sys.excepthook, "_pack_oom", False):
        return
    previous = sys.excepthook

    def excepthook(exc_type, exc, tb):
        if not report_oom(exc_type, exc, tb):
            previous(exc_type, exc, tb)

    excepthook._pack_oom = True
    sys.excepthook = excepthook
