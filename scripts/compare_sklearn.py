"""Side by side with scikit-learn's MLP on the same split: ``python scripts/compare_sklearn.py``.

For each seed, trains ``experiment=digits`` (or ``--experiment NAME``) with this project and
scikit-learn's `MLPClassifier` (or `MLPRegressor`) with the same hidden sizes on the same
standardised train split, and prints test accuracy (or RMSE) and training time of both.
This project's time is the whole run after the imports (data, compilation on the first seed,
training, evaluation, outputs); scikit-learn's is `fit` alone. Writes the table as JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from jax_mlp import config, errors, files, jobs, problems
from jax_mlp.data import CLASSIFICATION
from jax_mlp.errors import UserError


def sklearn_fit(problem: problems.Problem, hidden: list[int], seed: int) -> tuple[float, float]:
    """(test score, fit seconds) of scikit-learn's MLP with default settings on the same split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    data = problem.data
    estimator = (MLPClassifier if data.task == CLASSIFICATION else MLPRegressor)(
        hidden_layer_sizes=tuple(hidden), random_state=seed, max_iter=200)
    y_train = data.train.y if data.task == CLASSIFICATION else data.train.y[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        estimator.fit(data.train.x, y_train)
        seconds = time.perf_counter() - started
    predicted = estimator.predict(data.test.x)
    if data.task == CLASSIFICATION:
        return float(np.mean(predicted == data.test.y)), seconds
    return float(np.sqrt(np.mean((predicted - data.test.y[:, 0]) ** 2))), seconds


def _config(experiment: str, seed: int) -> config.Config:
    """``experiment=EXPERIMENT seed=SEED``; a mistake ends the script with one line and status 2."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return config.load(config.compose([f"experiment={experiment}", f"seed={seed}"]))
    except (HydraException, OmegaConfBaseException) as error:
        errors.exit_user_error(config.describe_error(error))
    except UserError as error:
        errors.exit_user_error(str(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="digits")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.json is not None:
        errors.or_exit(files.output_file, args.json, "--json")

    rows = []
    for seed in args.seeds:
        cfg = _config(args.experiment, seed)
        problem = problems.prepare(cfg)  # loads the data once before timing, as scikit-learn gets it
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            jobs.execute(cfg, Path(out))
            ours_seconds = time.perf_counter() - started
            summary = json.loads((Path(out) / "summary.json").read_text())
        classify = problem.data.task == CLASSIFICATION
        ours = summary["test_accuracy"] if classify else summary["test_rmse"]
        theirs, theirs_seconds = sklearn_fit(problem, cfg.model.hidden, seed)
        rows.append({"seed": seed, "jax_mlp": ours, "jax_mlp_seconds": ours_seconds,
                     "sklearn": theirs, "sklearn_seconds": theirs_seconds})

    metric = "test accuracy" if classify else "test RMSE"
    print(f"experiment={args.experiment}, hidden {cfg.model.hidden}; {metric}; seconds to train")
    print(f"{'seed':>6} {'jax_mlp':>10} {'sklearn':>10} {'jax_mlp s':>10} {'sklearn s':>10}")
    for r in rows:
        print(f"{r['seed']:>6} {r['jax_mlp']:>10.4f} {r['sklearn']:>10.4f} "
              f"{r['jax_mlp_seconds']:>10.3f} {r['sklearn_seconds']:>10.3f}")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "seed"}
    print(f"{'mean':>6} {mean['jax_mlp']:>10.4f} {mean['sklearn']:>10.4f} "
          f"{mean['jax_mlp_seconds']:>10.3f} {mean['sklearn_seconds']:>10.3f}")
    if args.json:
        files.write_atomic(args.json, (json.dumps({"experiment": args.experiment, "metric": metric,
                                                   "rows": rows, "mean": mean}, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
