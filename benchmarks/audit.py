"""The metadata audit's cost per condition (it runs before every ``fdt tune``, ``fdt report`` and ``fdt run``).

Times ``fdt.pipelines.audit._condition`` (grouped folds, the all-properties
forest, the bootstrap interval, each property alone) on a synthetic header
table of ``--rows`` images (half real, half fake: a JPEG-vs-PNG shortcut plus
noise properties), for this tree and, with ``--before DIR``, for the ``fdt`` in
DIR (``git archive REV fdt | tar -x -C DIR``), each in a fresh process (``python -P``, so the working folder does not shadow DIR), and
prints CPU seconds and their ratio.

    python benchmarks/audit.py --rows 2000 --before /tmp/fdt-before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys, time
import numpy as np
from fdt.pipelines import audit
rows = int(sys.argv[1])
rng = np.random.default_rng(0)
half = rows // 2
table = {name: rng.normal(size=rows) for name in audit.NUMERIC}
table.update(format=np.array(["JPEG"] * half + ["PNG"] * half, dtype=object), mode=np.array(["RGB"] * rows, dtype=object),
             subsampling=np.array(["4:2:0"] * half + ["none"] * half, dtype=object), bit_depth=np.full(rows, 8.0))
table.update(source=np.array(["real"] * half + ["fake"] * half), label=np.r_[np.zeros(half, int), np.ones(half, int)],
             group=np.array([f"g{i}" for i in range(rows)]))
start = time.process_time()
condition = audit._condition(table, "fake", ["fake"], 0, 1000)
print(json.dumps({"cpu_s": time.process_time() - start, "roc_auc": condition.roc_auc, "strongest": condition.strongest}))
"""


def measure(tree: Path, rows: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-P", "-c", CHILD, str(rows)], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--before", type=Path, default=None, help="a folder holding an older fdt package")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows} header rows, one condition (real vs fake)")
    after = measure(Path(__file__).resolve().parents[1], args.rows)
    print(f"after : {after['cpu_s']:6.2f} CPU-s  ROC AUC {after['roc_auc']:.3f}  strongest {after['strongest']}")
    if args.before:
        before = measure(args.before, args.rows)
        print(f"before: {before['cpu_s']:6.2f} CPU-s  ROC AUC {before['roc_auc']:.3f}  strongest {before['strongest']}")
        print(f"ratio before/after: {before['cpu_s'] / after['cpu_s']:.1f}x")


if __name__ == "__main__":
    main()
