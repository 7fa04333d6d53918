"""Pictures: written headless at the end of a run with ``trainer.plots=true``, and again, the same,
by ``scripts/plot.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from jax_mlp import config, jobs

PNG = b"\x89PNG\r\n\x1a\n"


def _pictures(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


@pytest.mark.parametrize(("overrides", "expected"), [
    (["trainer.steps=200"], {"loss.png", "fit.png"}),                                 # the note: 1-D regression
    (["experiment=moons", "trainer.epochs=2"], {"loss.png", "metrics.png"}),          # classification
    (["experiment=sine", "trainer.steps=150", "trainer.log_every=30"], {"loss.png", "fit.png"}),
])
def test_a_run_draws_its_pictures_and_plot_py_draws_the_same(tmp_path, run_script, overrides, expected):
    cfg = config.load(config.compose(["trainer.compilation_cache=false", "trainer.plots=true", *overrides]))
    assert jobs.execute(cfg, tmp_path / "run").status == "completed"
    drawn = _pictures(tmp_path / "run")
    assert set(drawn) == expected
    assert all(data.startswith(PNG) and len(data) > 5000 for data in drawn.values())
    for path in (tmp_path / "run").glob("*.png"):
        path.unlink()
    result = run_script("plot.py", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert sorted(Path(line).name for line in result.stdout.split()) == sorted(expected)
    assert _pictures(tmp_path / "run") == drawn  # byte for byte


@pytest.mark.slow
def test_a_sweep_draws_its_objective_against_the_swept_values(tmp_path, run_script):
    result = run_script("train.py", "-m", "hydra/sweeper=vmap", f"hydra.sweep.dir={tmp_path}", "trainer.plots=true",
                        "trainer.steps=50", "optimizer.lr=0.01,0.1,1", "seed=0,1")
    assert result.returncode == 0, result.stderr
    sweep_png = (tmp_path / "sweep.png").read_bytes()
    assert sweep_png.startswith(PNG)
    (tmp_path / "sweep.png").unlink()
    again = run_script("plot.py", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "sweep.png").read_bytes() == sweep_png
    assert {"loss.png", "fit.png"} <= set(_pictures(tmp_path / "5"))  # every job's pictures too


def test_plot_py_refuses_a_folder_with_nothing_to_draw(tmp_path, run_script):
    result = run_script("plot.py", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"jax_mlp: error: {tmp_path} is neither a run folder (summary.json) nor a "
                                     "sweep folder (job folders)")


def _sweep_axes(monkeypatch, tmp_path, rows):
    from jax_mlp import plots

    figures = []

    def keep(figure, path):
        figures.append(figure)
        return path

    monkeypatch.setattr(plots, "save", keep)
    assert plots.sweep_plot(tmp_path, rows) == tmp_path / "sweep.png"
    plots.pyplot().close(figures[0])  # as save would; its axes stay readable
    return figures[0].axes


def test_the_sweep_plot_draws_each_swept_key_on_log_axes_where_values_span_decades(monkeypatch, tmp_path):
    rows = [{"overrides": f"optimizer.lr={lr} trainer.steps={steps} seed={seed}", "objective": objective}
            for lr, steps, objective in [(0.001, 10, 5.0), (0.1, 20, 0.01), (1.0, 30, 0.02), ("inf", 40, 3.0)]
            for seed in (0, 1)]
    axes = _sweep_axes(monkeypatch, tmp_path, rows)
    assert [a.get_xlabel() for a in axes] == ["optimizer.lr", "trainer.steps"]
    assert [(a.get_xscale(), a.get_yscale()) for a in axes] == [("log", "log"), ("linear", "log")]
    lr_line = axes[0].get_lines()[0]
    assert list(lr_line.get_xdata()) == [0.001, 0.1, 1.0]  # the infinite learning rate is not drawn


def test_pictures_and_eval_json_that_cannot_be_written_are_one_line(tmp_path, run_script):
    cfg = config.load(config.compose(["trainer.compilation_cache=false", "trainer.steps=20"]))
    assert jobs.execute(cfg, tmp_path / "run").status == "completed"
    (tmp_path / "run" / "loss.png").mkdir()  # in the way, as a folder one may not write to would be
    (tmp_path / "run" / "eval.json").mkdir()
    drawn = run_script("plot.py", str(tmp_path / "run"))
    assert (drawn.returncode, drawn.stderr) == (2, f"jax_mlp: error: {tmp_path / 'run' / 'loss.png'}: Is a directory\n")
    evaluated = run_script("evaluate.py", str(tmp_path / "run"), "--split", "train")
    assert evaluated.returncode == 2 and evaluated.stdout.startswith("train_loss ")
    assert evaluated.stderr == (f"jax_mlp: error: cannot write {tmp_path / 'run' / 'eval.json'} (Is a directory); "
                                "the metrics are above\n")
