"""What a run is made of, read from files: which model and data (the hub commit from the Hugging
Face cache, or a digest of a local directory's files), which remote code (its files' digests, and
the fingerprints of the methods the pack's patches replace), the stack's versions and the pack's
commit. Pure file reading (and `git`, with a timeout): no torch, no transformers, no network.

Used by the training hook that writes `work_dirs/<name>/provenance.json`
(components/provenance.py), by the patches that refuse remote code they were not written for
(patches/_remote_code.py), by the preflight and by `python -m doctor report [--work-dir DIR]`.

The Hugging Face cache (huggingface_hub's layout, the same for models and datasets):
    <cache>/models--<org>--<name>/refs/<branch or tag>   -> the commit it points at
    <cache>/models--<org>--<name>/snapshots/<commit>/     -> the files of that commit
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path

FILE = "provenance.json"
FORMAT = "xtuner-8gb-pack provenance 1"
GGUF_KEY = "xtuner_pack.provenance"  # the GGUF metadata key the export writes it under
COMMIT = re.compile(r"[0-9a-f]{40}")
KNOWN_CODE = Path(__file__).parent / "data" / "remote_code.json"
CHUNK = 1 << 20


# ---- digests ------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def tree_digest(root: str | os.PathLike) -> dict:
    """sha256 over the sorted (relative path, file sha256) of every file under `root` (hidden
    folders such as .git and .cache/huggingface skipped): the same files give the same digest
    wherever they lie."""
    root = Path(root)
    entries, size = [], 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            entries.append(f"{rel}\0{sha256_file(path)}\n")
            size += path.stat().st_size
    h = hashlib.sha256("".join(sorted(entries)).encode())
    return {"sha256": h.hexdigest(), "files": len(entries), "bytes": size}


def files_digest(paths, label=str) -> dict:
    """The files a dataset was read from: each one's sha256 (keyed by `label(path)`), and one
    digest over them all (by file name and content: where they lie does not count)."""
    files = {label(p): sha256_file(p) for p in paths}
    h = hashlib.sha256("".join(f"{Path(p).name}\0{d}\n" for p, d in files.items()).encode())
    return {"sha256": h.hexdigest(), "files": files}


# ---- the Hugging Face cache -----------------------------------------------------------------


def hub_snapshot(cache: str | os.PathLike, repo: str, revision: str | None = None,
                 kind: str = "model") -> Path | None:
    """The snapshot directory of `repo` at `revision` (None: the default branch) in the cache,
    or None when the cache does not hold it."""
    root = Path(cache) / f"{kind}s--{repo.replace('/', '--')}"
    revision = revision or "main"
    commit = revision if COMMIT.fullmatch(revision) else None
    if commit is None:
        try:
            commit = (root / "refs" / revision).read_text().strip()
        except OSError:
            return None
    snapshot = root / "snapshots" / commit
    return snapshot if snapshot.is_dir() else None


def local_download_commit(directory: str | os.PathLike) -> str | None:
    """The hub commit `huggingface-cli download --local-dir DIR` recorded for DIR's files."""
    meta = Path(directory) / ".cache" / "huggingface" / "download"
    for name in ("config.json.metadata", "README.md.metadata"):
        try:
            first = (meta / name).read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            continue
        if COMMIT.fullmatch(first):
            return first
    return None


def is_hub_id(name: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name)) and not os.path.exists(name)


def describe_model(name_or_path: str, revision: str | None, *, cache: str | os.PathLike,
                   trust_remote_code: bool, commit: str | None = None) -> dict:
    """Where a model's files come from. `commit`: what transformers says it loaded (a config's
    `_commit_hash`), which wins over the cache's refs."""
    out: dict = {"name_or_path": name_or_path, "revision": revision,
                 "trust_remote_code": bool(trust_remote_code)}
    directory = None
    if is_hub_id(name_or_path):
        directory = hub_snapshot(cache, name_or_path, commit or revision)
        out["source"] = "hub"
        out["commit"] = commit or (directory.name if directory else None)
        if out["commit"] is None:
            out["note"] = "not in the local cache"
    elif Path(name_or_path).is_dir():
        directory = Path(name_or_path)
        out["source"] = "local"
        out["files"] = tree_digest(directory)
        hub_commit = local_download_commit(directory)
        if hub_commit:
            out["commit"] = hub_commit
    else:
        out["source"] = "missing"
    code = remote_code(directory) if directory else None
    if code:
        code["ran"] = bool(trust_remote_code)  # present in the repository, run only if trusted
        out["remote_code"] = code
    return out


def describe_dataset_repo(repo: str, revision: str | None, *,
                          cache: str | os.PathLike) -> dict:
    directory = hub_snapshot(cache, repo, revision, kind="dataset")
    out = {"source": "hub", "repo": repo, "revision": revision,
           "commit": directory.name if directory else None}
    if directory is None:
        out["note"] = "not in the local cache"
    return out


def cached_remote_code(cache: str | os.PathLike) -> list[dict]:
    """Every model snapshot in the Hugging Face cache that holds code `trust_remote_code` would
    run: repo, commit (and the refs naming it), the code's digests and what the patches say."""
    out = []
    root = Path(cache)
    for repo_dir in sorted(root.glob("models--*")):
        refs = {}
        for ref in (repo_dir / "refs").rglob("*"):
            if ref.is_file():
                refs.setdefault(ref.read_text().strip(), []).append(
                    ref.relative_to(repo_dir / "refs").as_posix())
        for snapshot in sorted((repo_dir / "snapshots").glob("*")):
            code = remote_code(snapshot) if snapshot.is_dir() else None
            if code:
                out.append(dict(repo=repo_dir.name[len("models--"):].replace("--", "/"),
                                commit=snapshot.name, refs=refs.get(snapshot.name, []), **code))
    return out


# ---- remote code ----------------------------------------------------------------------------


def remote_code(directory: str | os.PathLike) -> dict | None:
    """The Python files of a model directory that `trust_remote_code` would run (the `auto_map`
    of its config.json or tokenizer_config.json names them), their digests, and the
    fingerprints of the classes the pack's patches replace methods of. None when nothing would
    run (no auto_map, or no Python file)."""
    directory = Path(directory)
    auto_map = {}
    for name in ("config.json", "tokenizer_config.json"):
        try:
            auto_map.update(json.loads((directory / name).read_text()).get("auto_map") or {})
        except (OSError, ValueError, AttributeError):
            continue
    files = sorted(p for p in directory.glob("*.py") if p.is_file())
    if not auto_map or not files:
        return None
    digests = {p.name: sha256_file(p) for p in files}
    h = hashlib.sha256("".join(f"{n}\0{d}\n" for n, d in digests.items()).encode())
    out = {"sha256": h.hexdigest(), "files": digests, "auto_map": auto_map}
    checked = patch_checks(files)
    if checked:
        out["patches"] = checked
    return out


def patch_checks(files) -> dict:
    """{patch: {class: {file, known, differs, fingerprints}}} for each class of these modeling
    files that a patch of the pack replaces methods of."""
    checked: dict = {}
    for p in map(Path, files):
        source = p.read_text(encoding="utf-8", errors="replace")
        for patch, classes in known_code().items():
            for cls in classes:
                if re.search(rf"^class {re.escape(cls)}\b", source, re.M):
                    origin, differs, prints = check_code(patch, cls, source)
                    checked.setdefault(patch, {})[cls] = dict(
                        file=p.name, known=origin, differs=differs, fingerprints=prints)
    return checked


def preflight_remote_code(llm: dict, cache: str | os.PathLike, patches_on: dict[str, bool]
                          ) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Before a run that trusts remote code: (lines that report the code's digest, problems as
    (summary, fix lines)) for the patches in force (`patches_on`) that would refuse it."""
    if not llm.get("trust_remote_code"):
        return [], []
    name, revision = str(llm.get("pretrained_model_name_or_path") or ""), llm.get("revision")
    if is_hub_id(name):
        directory = hub_snapshot(cache, name, revision)
    else:
        directory = Path(name) if Path(name).is_dir() else None
    if directory is None:
        return [f"{name} runs its own code (trust_remote_code), not in the cache yet: the "
                "pack's patches check it when it loads"], []
    code = remote_code(directory)
    if not code:
        return [], []
    where = f"{name} @ {directory.name}" if is_hub_id(name) else str(directory)
    info = [f"{where} runs its own code (trust_remote_code): sha256 {code['sha256']} "
            f"({', '.join(code['files'])})"]
    problems = []
    for patch, classes in (code.get("patches") or {}).items():
        for cls, c in classes.items():
            if c["known"] or not patches_on.get(patch):
                continue
            problems.append((
                f"{patch} was not written for {where}'s {cls} ({c['file']}: "
                f"{', '.join(c['differs'])} differ): the run would stop when it reaches it",
                [f"`python -m doctor.provenance {directory / c['file']}` prints its "
                 "fingerprints; doctor/data/remote_code.json lists the versions the patch "
                 "knows", "pin `revision` to a known version"
                 + (", or --cfg-options model.sdpa_attention=False" if patch ==
                    "sdpa_attention" else "")]))
    return info, problems


def _canonical(node) -> str:
    """An AST as text, the same on every Python version: fields that are empty or None are left
    out (newer Pythons add fields such as `type_params=[]`)."""
    if isinstance(node, ast.AST):
        parts = [type(node).__name__]
        for name, value in ast.iter_fields(node):
            if value is None or value == [] or name in ("type_comment", "kind"):
                continue
            parts.append(f"{name}={_canonical(value)}")
        return "(" + " ".join(parts) + ")"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(v) for v in node) + "]"
    return repr(node)


def _strip(node: ast.AST) -> ast.AST:
    """What does not change behaviour goes: docstrings and type annotations (comments and
    formatting are not in the AST at all)."""
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if (isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            n.body = body[1:] or [ast.Pass()]
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n.returns = None
        elif isinstance(n, ast.arg):
            n.annotation = None
    return node


def fingerprints(source: str, members) -> dict[str, str | None]:
    """sha256 of the code of each member ("Class.method" or "function") of a module's source,
    its signature included, docstrings, annotations, comments and formatting not: a method that
    computes something else gets another fingerprint, a reworded comment does not. None for a
    member the source does not define, or for every member of a source that does not parse (a
    hub commit of internlm2-chat-7b did not): the doctor reads it, Python would not."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {member: None for member in members}
    top = {n.name: n for n in tree.body
           if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    out: dict[str, str | None] = {}
    for member in members:
        cls, _, method = member.rpartition(".")
        node = top.get(cls) if cls else top.get(method)
        if cls and isinstance(node, ast.ClassDef):
            node = next((n for n in node.body if isinstance(n, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef))
                         and n.name == method), None)
        elif cls:
            node = None
        out[member] = (hashlib.sha256(_canonical(_strip(node)).encode()).hexdigest()
                       if node is not None else None)
    return out


@functools.lru_cache(maxsize=4)
def known_code(path: str | os.PathLike = KNOWN_CODE) -> dict:
    """{patch: {class: {"members": [...], "known": [{"origin": ..., "fingerprints": {...}}]}}}:
    the remote code each patch of the pack was written for and checked against."""
    data = json.loads(Path(path).read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def check_code(patch: str, cls: str, source: str) -> tuple[str | None, list[str], dict]:
    """(origin of the known version it matches or None, the members that differ from the
    closest known version, this source's fingerprints)."""
    spec = known_code()[patch][cls]
    prints = fingerprints(source, spec["members"])
    best: list[str] | None = None
    for entry in spec["known"]:
        differs = [m for m in spec["members"] if entry["fingerprints"].get(m) != prints[m]]
        if not differs:
            return entry["origin"], [], prints
        if best is None or len(differs) < len(best):
            best = differs
    return None, best if best is not None else list(spec["members"]), prints


# ---- the stack and the pack -----------------------------------------------------------------


def stack_versions() -> dict:
    """Python, and each package of the pin set (env/stack.txt) as installed, with its pin where
    they differ: the doctor's own readers (doctor.facts)."""
    from .facts import Facts
    from .probe import Machine

    facts = Facts(Machine.from_environ())
    out: dict = {"python": facts.python_version}
    stack = facts.stack
    for pin in stack.pins if stack else []:
        if pin.name in out:
            continue
        installed = facts.dist_version(pin.name)
        if installed is None and pin.group:
            continue  # an optional group (deepspeed, ...) that is not installed
        out[pin.name] = installed if installed == pin.version else dict(
            installed=installed, pinned=pin.version)
    return out


def pack_commit(repo: str | os.PathLike | None = None) -> dict:
    """The pack's git commit, and the files that differ from it (a run from edited code says
    so); {"commit": None} outside a git checkout."""
    from .probe import Machine

    repo = str(repo or Path(__file__).resolve().parents[1])
    m = Machine.from_environ()
    head = m.run(["git", "-C", repo, "rev-parse", "HEAD"], timeout=10)
    if head.rc != 0:
        return {"commit": None}
    status = m.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                   timeout=10)
    changed = [line[3:] for line in (status.stdout or "").splitlines() if line.strip()]
    return {"commit": head.stdout.strip(), "modified": changed}


def decontamination_report(data_files) -> Path | None:
    """The decontamination report beside a training file: X_clean.jsonl -> X_report.jsonl
    (`make mathmix`), X.jsonl -> X.report.jsonl."""
    for f in data_files or []:
        p = Path(f)
        stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.stem
        for candidate in (stem.replace("_clean", "_report") + ".jsonl", stem + ".report.jsonl"):
            if candidate != p.name and (p.parent / candidate).is_file():
                return p.parent / candidate
    return None


# ---- reading it back ------------------------------------------------------------------------


def read(path: str | os.PathLike) -> dict | None:
    """provenance.json of a work dir, an adapter directory, or the file itself; None when there
    is none. A file that is not JSON is an error naming it."""
    path = Path(path)
    if path.is_dir():
        path = path / FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None


def summary_lines(prov: dict) -> list[str]:
    """A few lines a person reads: run, model, data, remote code, stack, pack."""
    c = prov.get("config") or {}
    options = " ".join(f"{k}={v}" for k, v in (c.get("cfg_options") or {}).items())
    lines = [f"run: {c.get('file')}" + (f" --cfg-options {options}" if options else "")
             + f", started {prov.get('created')}"]
    if prov.get("checkpoint"):
        lines.append(f"checkpoint: {prov['checkpoint']['file']} "
                     f"(sha256 {prov['checkpoint'].get('sha256')})")
    m = prov.get("model") or {}
    where = m.get("commit") or (m.get("files") or {}).get("sha256") or m.get("note") or "?"
    lines.append(f"model: {m.get('name_or_path')} @ {where}"
                 + (f" (revision {m['revision']})" if m.get("revision") else "")
                 + f", trust_remote_code={m.get('trust_remote_code')}")
    code = m.get("remote_code")
    if code:
        state = "ran" if code.get("ran") else "present, not run"
        lines.append(f"remote code ({state}): sha256 {code['sha256']} "
                     f"({', '.join(code.get('files') or [])})")
        for patch, classes in (code.get("patches") or {}).items():
            for cls, c in classes.items():
                lines.append(f"  {patch} / {cls}: " + (f"known ({c['known']})" if c["known"]
                             else "not a version the patch knows: " + ", ".join(c["differs"])
                             + " differ"))
    d = prov.get("dataset") or {}
    data = d.get("commit") or (d.get("files") or {}).get("sha256") or d.get("note") or "?"
    lines.append(f"data: {d.get('name')} ({d.get('source')}) @ {data}")
    decon = prov.get("decontamination")
    lines.append("decontamination report: " + (f"{decon['path']} sha256 {decon['sha256']}"
                                                if decon else "none"))
    pack = prov.get("pack") or {}
    lines.append(f"pack: {pack.get('commit') or 'not a git checkout'}"
                 + (f" + {len(pack['modified'])} modified file(s)" if pack.get("modified")
                    else ""))
    stack = prov.get("stack") or {}
    lines.append("stack: " + ", ".join(
        f"{k} {v if isinstance(v, str) else v.get('installed')}" for k, v in stack.items()
        if k in ("python", "torch", "transformers", "xtuner", "peft", "bitsandbytes")))
    return lines


def markdown(prov: dict | None, cached: list[dict]) -> list[str]:
    """`doctor report`'s sections: the run's provenance, the remote code in the cache."""
    out = []
    if prov is not None:
        out += ["", "**Provenance of the run**", ""] + [f"- {line}" for line in
                                                       summary_lines(prov)]
    out += ["", "**Remote code in the Hugging Face cache**" + ("" if cached else ": none"), ""]
    for c in cached:
        refs = f" ({', '.join(c['refs'])})" if c["refs"] else ""
        out.append(f"- {c['repo']} @ {c['commit']}{refs}: sha256 {c['sha256']} "
                   f"({', '.join(c['files'])})")
        for patch, classes in (c.get("patches") or {}).items():
            for cls, v in classes.items():
                out.append(f"  - {patch} / {cls}: " + (f"known ({v['known']})" if v["known"]
                           else f"unknown: {', '.join(v['differs'])} differ (the patch "
                                "refuses it)"))
    return out


def main(argv=None) -> int:
    """`python -m doctor.provenance FILE...`: the fingerprints of the members the pack's patches
    rely on, for each modeling file, and whether the patches know them."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(main.__doc__.strip(), file=sys.stderr)
        return 2
    out = {}
    for name in argv:
        if not Path(name).is_file():
            print(f"{name}: no such file", file=sys.stderr)
            return 2
        out[name] = patch_checks([name]) or "no class the patches replace"
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
