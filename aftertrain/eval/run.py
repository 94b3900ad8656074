"""`python -m aftertrain eval CONFIG [--adapter DIR]`: GSM8K and MATH accuracy of the config's
model before and after its adapter, with 95 % intervals, what decontamination says about the test
items, and every graded reply in work_dirs/<name>/eval.json."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from doctor.atomic import write_json

from ..config import ConfigReadError, ensure_model, read_config
from . import decon
from .data import EvalDataError, load_items
from .harness import EvalError
from .stats import mean_ci, wilson

DEFAULT_FILES = {"gsm8k": "data/gsm8k_test.jsonl", "math": "data/math_test.jsonl"}  # make mathmix
MAX_NEW = {"gsm8k": 512, "math": 1024}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aftertrain eval",
                                description=__doc__.split("\n")[0])
    p.add_argument("config", help="the XTuner training config (its model, quantization, template)")
    p.add_argument("--adapter",
                   help="the HF adapter of `xtuner convert pth_to_hf` (omit: base only)")
    p.add_argument("--gsm8k", help=f"GSM8K test file (public schema or `curation prepare`'s; "
                   f"default {DEFAULT_FILES['gsm8k']} if it exists)")
    p.add_argument("--math", help=f"MATH test file (default {DEFAULT_FILES['math']} if it exists)")
    p.add_argument("--tasks", default="gsm8k,math", help="which of gsm8k,math to run")
    p.add_argument("--limit", type=int, help="the first N items of each file")
    p.add_argument("--max-new-tokens", type=int, help="per answer (default GSM8K 512, MATH 1024)")
    p.add_argument("--batch", type=int, help="generation batch (default: what fits --gpu-mem)")
    p.add_argument("--gpu-mem", type=float, default=8.0, help="GiB the batch must fit (default 8)")
    p.add_argument("--decon-report", help="decontamination report of the training data (default: "
                   "the one beside the config's data file, e.g. data/mathmix_report.jsonl)")
    p.add_argument("--no-gold-loss", action="store_true", help="skip the loss of the gold "
                   "solutions (one forward per item, no generation)")
    p.add_argument("--work-dir", help="where eval.json goes (default work_dirs/<config name>)")
    return p


def table(summary: dict) -> str:
    """Accuracy, the rate of answers in the trained format ("The answer is N."), each with its
    95 % Wilson interval, and the gold solutions' loss, per task and model; then the change (the
    loss's with its paired 95 % interval)."""
    head = (f"{'task':<6} {'model':<13} {'accuracy [95% CI]':<25} {'trained format [95% CI]':<25}"
            " gold-solution loss (nats/token)")
    lines = [head, "-" * len(head)]

    def rate(r, key, ci):
        k, n = r[key], r["n"]
        return f"{k:>3}/{n:<3} {100 * k / max(n, 1):5.1f} % [{100 * ci[0]:.0f}-{100 * ci[1]:.0f}]"

    def gain(base, tuned, key):
        d = tuned[key] - base[key]
        return f"{d:>+7} {100 * d / max(base['n'], 1):+6.1f} pts"

    for task, t in summary.items():
        runs = t["runs"]
        for label, r in runs.items():
            loss = f"{r['gold_loss']:.3f}" if r.get("gold_loss") is not None else "-"
            lines.append(f"{task:<6} {label:<13} {rate(r, 'correct', r['ci95']):<25} "
                         f"{rate(r, 'format', r['format_ci95']):<25} {loss}")
        if len(runs) == 2:
            base, tuned = runs.values()
            change, loss = t.get("change") or {}, "-"
            if change.get("gold_loss") is not None:
                lo, hi = change["gold_loss_ci95"]
                loss = f"{change['gold_loss']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            lines.append(f"{task:<6} {'change':<13} {gain(base, tuned, 'correct'):<25} "
                         f"{gain(base, tuned, 'format'):<25} {loss}")
    return "\n".join(lines)


def evaluate(args) -> dict:
    from . import batch as batch_mod
    from . import harness

    spec = read_config(args.config)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    files = {}
    for task in tasks:
        if task not in DEFAULT_FILES:
            raise EvalError(f"--tasks: unknown task {task!r} (gsm8k, math)")
        given = getattr(args, task)
        if given:
            files[task] = Path(given)
        elif Path(DEFAULT_FILES[task]).is_file():
            files[task] = Path(DEFAULT_FILES[task])
    if not files:
        raise EvalError("no test file: pass --gsm8k FILE and/or --math FILE (what `python -m "
                        "curation prepare gsm8k --split test --out F` writes, or the public "
                        "schema), or run `make mathmix-prepare`")
    items = {task: load_items(task, f, args.limit)[0] for task, f in files.items()}
    if args.adapter and not (Path(args.adapter) / "adapter_config.json").is_file():
        raise EvalError(f"{args.adapter}: no adapter_config.json (the output directory of "
                        "`xtuner convert pth_to_hf CONFIG CKPT DIR`)")

    ensure_model(spec)
    tokenizer = harness.build_tokenizer(spec)
    until = harness.stop_strings(spec, tokenizer)
    max_new = {t: args.max_new_tokens or MAX_NEW[t] for t in files}
    longest = max(len(tokenizer(it.question).input_ids) for its in items.values() for it in its)
    seq = longest + 64 + max(max_new.values())  # + the template's markers
    if args.batch:
        batch, why = args.batch, f"batch {args.batch} (--batch)"
    else:
        plan = batch_mod.plan(spec.config, seq_tokens=seq, gpu_gib=args.gpu_mem,
                              adapter=bool(args.adapter))
        batch, why = plan.batch, plan.describe()
    print(f"model   {spec.model_path} ({'4-bit nf4' if spec.quantized else '16-bit'} as trained), "
          f"template {_template_name(spec.template)}, stop {until}")
    print(f"batch   {why}")

    model = harness.build_model(spec)
    lm = harness.make_lm(model, tokenizer, batch_size=batch)
    answer_end = harness.answer_end(spec, tokenizer)
    labels = ["base"] + (["base+adapter"] if args.adapter else [])
    rows: list[dict] = []
    timing = {}
    for label in labels:
        if label == "base+adapter":
            from peft import PeftModel

            lm._model = PeftModel.from_pretrained(model, args.adapter)
            lm._model.eval()
        for task, its in items.items():
            started = time.monotonic()
            graded = harness.run_task(lm, task, its, until=until, max_new_tokens=max_new[task],
                                      system=spec.system)
            timing[(task, label)] = time.monotonic() - started
            if not args.no_gold_loss:
                losses = harness.gold_losses(lm, task, its, answer_end=answer_end,
                                             system=spec.system)
                graded = [dict(r, **loss) for r, loss in zip(graded, losses, strict=True)]
            rows.extend(dict(r, model=label) for r in graded)

    summary = {}
    for task, f in files.items():
        runs = {label: run_summary([r for r in rows if r["task"] == task and r["model"] == label],
                                   timing[(task, label)]) for label in labels}
        lines = {int(it.where.rsplit(":", 1)[1]) for it in items[task]
                 if it.where.rsplit(":", 1)[-1].isdigit()}
        report = decon.find_report(spec.data_files, args.decon_report)
        finding = decon.read_report(report, f, lines) if report and report.is_file() else None
        summary[task] = dict(file=str(f), runs=runs,
                             decontamination=finding and dict(
                                 report=str(finding.report), matched_items=finding.matched_items,
                                 removed_rows=finding.removed_rows, checked=finding.checked,
                                 line=finding.line()))
        if len(labels) == 2:
            summary[task]["change"] = paired_change(
                [r for r in rows if r["task"] == task and r["model"] == labels[0]],
                [r for r in rows if r["task"] == task and r["model"] == labels[1]])
    work_dir = Path(args.work_dir or Path("work_dirs") / spec.name)
    out = write_json(work_dir / "eval.json", dict(
        config=str(spec.config), model=spec.model_path, adapter=args.adapter,
        template=spec.template, stop=until, batch=batch, date=dt.date.today().isoformat(),
        tasks=summary, items=rows))
    print()
    print(table(summary))
    for task, t in summary.items():
        d = t["decontamination"]
        print(f"{task}: " + (d["line"] if d else "no decontamination report for the training data "
                              "(--decon-report FILE): test items seen in training: unknown"))
    print(f"per item: {out}")
    return dict(summary=summary, path=str(out), rows=rows)


def run_summary(mine: list[dict], seconds: float) -> dict:
    k, n = sum(r["correct"] for r in mine), len(mine)
    fmt = sum(r["extracted_by"] == "format" for r in mine)
    out = dict(correct=k, n=n, accuracy=k / n, ci95=list(wilson(k, n)),
               format=fmt, format_rate=fmt / n, format_ci95=list(wilson(fmt, n)),
               seconds=round(seconds, 2), items_per_s=round(n / max(seconds, 1e-9), 3))
    if mine and "gold_loss" in mine[0]:
        out["gold_loss"] = sum(r["gold_loss"] for r in mine) / n
    return out


def paired_change(base: list[dict], tuned: list[dict]) -> dict:
    """tuned - base; the gold loss's change with a 95 % interval over the items (paired)."""
    out = {}
    if base and "gold_loss" in base[0]:
        diffs = [t["gold_loss"] - b["gold_loss"] for b, t in zip(base, tuned, strict=True)]
        out["gold_loss"], ci = mean_ci(diffs)
        out["gold_loss_ci95"] = list(ci)
    return out


def _template_name(template: dict) -> str:
    from xtuner.utils import PROMPT_TEMPLATE

    for name in PROMPT_TEMPLATE.keys():
        if dict(PROMPT_TEMPLATE[name]) == template:
            return name
    return "(custom)"


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        evaluate(args)
    except (EvalError, EvalDataError, ConfigReadError) as exc:
        print(f"aftertrain eval: {exc}", file=sys.stderr)
        return 2
    return 0
