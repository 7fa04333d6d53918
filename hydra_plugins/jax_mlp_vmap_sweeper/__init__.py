"""jax_mlp's Hydra sweeper: ``hydra/sweeper=vmap`` trains a whole sweep as vmapped programs."""
