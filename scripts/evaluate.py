"""Evaluate a finished run: ``python scripts/evaluate.py RUN_DIR [--split test|val|train] [--allow-changed-data]``.

Restores the run's params, config, feature encoding and scaling, prints the split's metrics and
writes them to ``RUN_DIR/eval.json``. A data file that changed since the run read it is refused
(its splits would be others), unless ``--allow-changed-data``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jax_mlp import errors, jobs, report
from jax_mlp.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder (it holds summary.json)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--allow-changed-data", action="store_true",
                        help="evaluate even if a data file changed since the run read it (with a warning)")
    args = parser.parse_args(argv)
    try:
        metrics = jobs.evaluate_run(args.run_dir, args.split, args.allow_changed_data)
    except UserError as error:
        errors.exit_user_error(str(error))
    for key, value in metrics.items():
        print(f"{args.split}_{key} {value:.6g}")
    try:
        report.write_record(args.run_dir / "eval.json", {"split": args.split, **metrics})
    except OSError as error:
        errors.exit_user_error(f"cannot write {args.run_dir / 'eval.json'} ({error.strerror}); the metrics are above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
