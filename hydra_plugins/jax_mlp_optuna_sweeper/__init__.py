"""jax_mlp's Hydra sweeper: ``hparams_search=optuna`` is Hydra's Optuna sweeper, whose search continues and resumes."""
