"""Data sets: where the arrays come from, how they are split, scaled and described."""

from jax_mlp.data.dataset import CLASSIFICATION, REGRESSION, Dataset, Raw, Scaling, Split, load_dataset

__all__ = ["CLASSIFICATION", "REGRESSION", "Dataset", "Raw", "Scaling", "Split", "load_dataset"]
