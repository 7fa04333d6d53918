"""jax_mlp: a JAX training pipeline for multilayer perceptrons, built from plain functions."""

from jax_mlp.errors import UserError

__all__ = ["UserError"]
__version__ = "0.1.0"
