"""Data sets: where the arrays come from and how they are split."""

from jax_mlp.data.dataset import Dataset, Split, load_dataset

__all__ = ["Dataset", "Split", "load_dataset"]
