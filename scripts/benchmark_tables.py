"""Loading a large CSV, side by side: ``python scripts/benchmark_tables.py [--rows N] [--columns K] [--json PATH]``.

Writes a table of N rows by K numeric columns (the last is the regression target; default
1,000,000 x 50), then, each in a fresh process and alternating, times `pandas.read_csv` of it and
jax_mlp's whole load (`load_dataset` of ``data=csv``: reading, the file's SHA-256, task decision,
missing-value check, 60/20/20 split, encoding and standardisation; after a first load of a small
file has imported scikit-learn's modules), and reports the ratio, each process's peak resident
memory, and the loaded arrays' bytes against their float32 size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jax_mlp import errors, files

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
path, kind = sys.argv[1], sys.argv[2]
import numpy as np, pandas as pd
if kind == "jax_mlp":
    from jax_mlp import config
    from jax_mlp.data import load_dataset
    cfg = config.load(config.compose(["data=csv", f"data.path={path}", "data.target=c{last}"]))
    small = path + ".small.csv"  # a first load imports what loading needs (scikit-learn's modules): not timed
    pd.read_csv(path, nrows=100).to_csv(small, index=False)
    load_dataset(config.load(config.compose(["data=csv", f"data.path={small}", "data.target=c{last}"])).data, 0)
started = time.perf_counter()
if kind == "pandas":
    frame = pd.read_csv(path)
    arrays = frame.to_numpy().nbytes
else:
    data = load_dataset(cfg.data, 0)
    arrays = sum(s.x.nbytes + s.y.nbytes for s in data.splits().values())
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "array_bytes": arrays}))
"""


def measure(path: Path, kind: str, columns: int) -> dict:
    child = CHILD.replace("{last}", str(columns - 1))
    result = subprocess.run([sys.executable, "-c", child, str(path), kind], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.json is not None:
        errors.or_exit(files.output_file, args.json, "--json")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "table.csv"
        started = time.perf_counter()
        rng = np.random.default_rng(0)
        with open(path, "w") as f:
            f.write(",".join(f"c{j}" for j in range(args.columns)) + "\n")
            for start in range(0, args.rows, 100_000):
                block = rng.standard_normal((min(100_000, args.rows - start), args.columns)).astype(np.float32)
                np.savetxt(f, block, fmt="%.6g", delimiter=",")
        print(f"wrote {args.rows} x {args.columns} ({path.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
        runs: dict[str, list[dict]] = {"pandas": [], "jax_mlp": []}
        for _ in range(args.repeats):
            for kind in runs:
                runs[kind].append(measure(path, kind, args.columns))
        best = {kind: min(r["seconds"] for r in results) for kind, results in runs.items()}
        float32_bytes = args.rows * args.columns * 4
        result = {
            "rows": args.rows, "columns": args.columns, "file_mib": path.stat().st_size / 2**20,
            "pandas_read_csv_s": best["pandas"], "jax_mlp_load_s": best["jax_mlp"],
            "jax_mlp_over_pandas": best["jax_mlp"] / best["pandas"],
            "pandas_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["pandas"]),
            "jax_mlp_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["jax_mlp"]),
            "jax_mlp_arrays_over_float32": runs["jax_mlp"][0]["array_bytes"] / float32_bytes,
            "all_seconds": {kind: [r["seconds"] for r in results] for kind, results in runs.items()},
        }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        files.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
