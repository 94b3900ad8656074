"""A fake `nvidia-smi`: a real executable that answers the query it is given, field by field, as
the real one does (`--query-gpu=F1,F2 --format=csv,noheader,nounits` prints those columns of
every GPU), `-L` (GPUs and their MIG devices), and `topo -p2p r`. An older driver's nvidia-smi is
one that does not know some fields: it rejects the whole query, as the real one does, with
`Field "compute_cap" is not a valid field to query.` and exit status 2 (driver 470 and older do
not know compute_cap)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCRIPT = '''#!{python}
import json, sys
spec = json.loads({spec!r})
args = sys.argv[1:]
if args[:1] == ["topo"]:
    if spec["topo"] is None:
        sys.exit(3)
    print(spec["topo"], end="")
    sys.exit(0)
if args[:1] == ["-L"]:
    for g in spec["gpus"]:
        print("GPU %s: %s (UUID: %s)" % (g["index"], g["name"], g["uuid"]))
        for line in g.get("mig", []):
            print("  " + line)
    sys.exit(0)
query = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), None)
if query is None or spec["reject_all"] and len(query.split(",")) > spec["reject_all"]:
    print("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.")
    sys.exit(2)
fields = query.split(",")
for f in fields:
    if f in spec["unknown"]:
        print('Field "%s" is not a valid field to query.' % f)
        print()
        sys.exit(2)
for g in spec["gpus"]:
    print(", ".join(str(g.get(f, "[N/A]")) for f in fields))
'''


def uuid(i: int) -> str:
    return f"GPU-{0x8f6b3e1c + i:08x}-53a2-4c1e-9f0d-2b7c{i:08x}"


def write(path: Path, gpus, driver: str = "550.90.07", unknown=(), topo: str | None = None,
          reject_all: int = 0, mig: dict | None = None) -> Path:
    """nvidia-smi at `path` for GPUs given as (name, total MiB, free MiB, "cc") tuples;
    `unknown` fields it rejects, `reject_all`: it rejects any query of more fields than that
    with a message that names none (the doctor must then ask field by field)."""
    rows = []
    for i, (name, total, free, cc) in enumerate(gpus):
        rows.append({"index": i, "name": name, "memory.total": total, "memory.free": free,
                     "compute_cap": cc, "driver_version": driver, "uuid": uuid(i),
                     "pci.bus_id": f"00000000:{i + 1:02X}:00.0", "mig": (mig or {}).get(i, [])})
    spec = {"gpus": rows, "unknown": list(unknown), "topo": topo, "reject_all": reject_all}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT.format(python=sys.executable, spec=json.dumps(spec)))
    path.chmod(0o755)
    return path
