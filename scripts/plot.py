"""Draw a run's or a sweep's pictures again: ``python scripts/plot.py FOLDER``.

A run folder (it holds ``summary.json``) gets ``loss.png``, ``metrics.png`` (classification) and
``fit.png`` (a regression of one input on one output); a sweep folder (it holds job folders) gets
each job's pictures and ``sweep.png``: the objective against each swept number.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jax_mlp import errors, jobs, plots, report
from jax_mlp.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a run folder or a sweep folder")
    args = parser.parse_args(argv)
    try:
        if (args.folder / "summary.json").is_file():
            written = jobs.plot_run(args.folder)
        else:
            rows = report.sweep_rows(args.folder)
            if not rows:
                raise UserError(f"{args.folder} is neither a run folder (summary.json) nor a sweep folder "
                                "(job folders)")
            written = [path for row in rows if row["status"] != "failed"
                       for path in jobs.plot_run(args.folder / row["job"])]
            written += [path for path in [plots.sweep_plot(args.folder, rows)] if path is not None]
    except UserError as error:
        errors.exit_user_error(str(error))
    except OSError as error:  # a folder this user may read but not write, say
        errors.exit_user_error(f"{error.filename}: {error.strerror}")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
