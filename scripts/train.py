"""Train an MLP from the Hydra configs in conf/: ``python scripts/train.py [key=value ...] [-m]``."""

from jax_mlp import run

if __name__ == "__main__":
    run.exit_after(run.main)
