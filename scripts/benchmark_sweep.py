"""Sweeps side by side: ``python scripts/benchmark_sweep.py [--quick] [--json PATH]``.

Runs the same sweep as whole commands with Hydra's basic sweeper and with ``hydra/sweeper=vmap``,
and one job of it alone (after a first run that fills the compilation cache), and reports the wall
times, their ratios, and how far the two sweepers' per-job results differ (final training loss
and params). Workloads: the note's network, 16 learning rates x 16 seeds, 2000 steps each (256
jobs); ``experiment=moons``, 8 learning rates x 8 seeds (64 jobs). ``--quick`` takes 4 x 4 and
4 x 2 jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jax_mlp import errors, files

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "scripts/train.py", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return time.perf_counter() - started


def agreement(a: Path, b: Path, jobs: int) -> dict[str, float]:
    """Largest differences between the two sweeps' jobs: final training loss and params."""
    loss = params = 0.0
    for job in range(jobs):
        sa = json.loads((a / str(job) / "summary.json").read_text())
        sb = json.loads((b / str(job) / "summary.json").read_text())
        if sa["status"] == sb["status"] == "completed":
            loss = max(loss, abs(sa["train_loss"] - sb["train_loss"]) / max(abs(sb["train_loss"]), 1e-30))
            with np.load(a / str(job) / "params.npz") as pa, np.load(b / str(job) / "params.npz") as pb:
                params = max(params, max(float(np.max(np.abs(pa[k] - pb[k]))) for k in pa.files))
    return {"max_relative_loss_difference": loss, "max_abs_param_difference": params}


def measure(name: str, base: list[str], sweep: list[str], single: list[str], jobs: int, tmp: Path,
            env: dict) -> dict:
    """Times one job alone and the vmap sweep, each in its second run (the first fills the
    compilation cache with its programs; the sweep's cold time is reported too), then the basic
    sweep, whose jobs share the single run's programs."""
    for attempt in range(2):
        single_s = timed([*base, *single, f"hydra.run.dir={tmp / name / f'single{attempt}'}"], env)
    vmap_cold, vmap = (timed(["-m", "hydra/sweeper=vmap", *base, *sweep, f"hydra.sweep.dir={tmp / name / folder}"], env)
                       for folder in ("vmap_cold", "vmap"))
    basic = timed(["-m", *base, *sweep, f"hydra.sweep.dir={tmp / name / 'basic'}"], env)
    return {"jobs": jobs, "single_run_s": single_s, "vmap_sweep_s": vmap, "vmap_sweep_cold_s": vmap_cold,
            "basic_sweep_s": basic, "basic_over_vmap": basic / vmap, "vmap_over_single": vmap / single_s,
            "vmap_cold_over_single": vmap_cold / single_s,
            **agreement(tmp / name / "vmap", tmp / name / "basic", jobs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.json is not None:
        errors.or_exit(files.output_file, args.json, "--json")
    lrs = lambda n, start, factor: ",".join(f"{start * factor**i:.4g}" for i in range(n))  # noqa: E731
    note_lr, note_seeds, moons_lr, moons_seeds = (4, 4, 4, 2) if args.quick else (16, 16, 8, 8)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        results["note"] = measure("note", ["trainer.steps=2000"],
                                  [f"optimizer.lr={lrs(note_lr, 0.01, 1.3)}", f"seed=range({note_seeds})"],
                                  ["optimizer.lr=0.01", "seed=0"], note_lr * note_seeds, Path(tmp), env)
        results["moons"] = measure("moons", ["experiment=moons"],
                                   [f"optimizer.lr={lrs(moons_lr, 0.01, 1.5)}", f"seed=range({moons_seeds})"],
                                   ["optimizer.lr=0.01", "seed=0"], moons_lr * moons_seeds, Path(tmp), env)
    print("| workload | jobs | single run s | vmap sweep s (cold cache) | basic sweep s | basic / vmap | "
          "vmap / single (cold) | max rel. loss diff | max param diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['jobs']} | {r['single_run_s']:.2f} | {r['vmap_sweep_s']:.2f} "
              f"({r['vmap_sweep_cold_s']:.2f}) | {r['basic_sweep_s']:.2f} | {r['basic_over_vmap']:.1f} "
              f"| {r['vmap_over_single']:.2f} "
              f"({r['vmap_cold_over_single']:.2f}) | {r['max_relative_loss_difference']:.2g} "
              f"| {r['max_abs_param_difference']:.2g} |")
    if args.json:
        files.write_atomic(args.json, (json.dumps(results, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
