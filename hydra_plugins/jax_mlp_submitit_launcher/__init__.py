"""jax_mlp's Hydra launcher: ``launcher=submitit_local`` is Hydra's submitit local launcher with a Ctrl-C that saves."""
