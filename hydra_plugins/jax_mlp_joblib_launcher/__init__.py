"""jax_mlp's Hydra launcher: ``launcher=joblib`` is Hydra's joblib launcher with a Ctrl-C that saves."""
