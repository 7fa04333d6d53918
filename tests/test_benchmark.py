"""The benchmark's bookkeeping: rounds, paired ratios and the target table (its timings are not
tested: these machines are too noisy for timed tests)."""

import importlib.util
import json
import sys

import pytest
from conftest import ROOT


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    yield _script("benchmark")
    del sys.modules["benchmark"]


@pytest.fixture(scope="module")
def compare():
    yield _script("compare_sklearn")
    del sys.modules["compare_sklearn"]


def test_skipping_a_contender_that_does_not_exist_is_one_line_before_any_timing(bench, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--skip", "sklearn", "nothing"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "jax_mlp: error: --skip nothing: no contender is named so; the contenders: jax_mlp fit, python loop + jit "
        "step, hand-written lax.scan, pytorch eager, sklearn sgd (a part of a name is enough: sklearn, pytorch)\n")


@pytest.fixture(scope="module")
def bench_sweep():
    yield _script("benchmark_sweep")
    del sys.modules["benchmark_sweep"]


@pytest.mark.parametrize("args, message", [
    (["--repeats", "0"], "--repeats must be a positive integer, got 0"),
    (["--json", "{tmp}/f/results.json"], "--json {tmp}/f/results.json: cannot make its folder {tmp}/f (File exists); "
                                          "give another"),
    (["--json", "{tmp}"], "--json {tmp}: that is a folder; give a file's name"),
], ids=["repeats", "json_under_a_file", "json_a_folder"])
def test_the_benchmarks_refuse_what_would_fail_them_at_their_end_before_any_work(bench, bench_sweep, compare, tmp_path,
                                                                                  capsys, args, message):
    # Each ran for minutes, then ended in a traceback: min() of no rounds, or writing its JSON.
    (tmp_path / "f").write_text("a file")
    args = [arg.format(tmp=tmp_path) for arg in args]
    for script in (bench, bench_sweep, compare) if args[0] == "--json" else (bench,):
        with pytest.raises(SystemExit) as stop:
            script.main(args)
        assert stop.value.code == 2
        assert capsys.readouterr().err == f"jax_mlp: error: {message.format(tmp=tmp_path)}\n"


def test_compare_sklearn_scores_both_on_the_same_split(compare, tmp_path, capsys):
    assert compare.main(["--experiment", "iris", "--seeds", "0", "--json", str(tmp_path / "c.json")]) == 0
    table = json.loads((tmp_path / "c.json").read_text())
    assert table["metric"] == "test accuracy" and [row["seed"] for row in table["rows"]] == [0]
    for contender in ("jax_mlp", "sklearn"):  # 30 test flowers: at most 3 wrong
        right = table["rows"][0][contender] * 30
        assert right >= 27 and right == pytest.approx(round(right), abs=1e-4)
    with pytest.raises(SystemExit) as stop:
        compare.main(["--experiment", "foo"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == ("jax_mlp: error: experiment=foo is not a config option; choose one of digits, "
                                       "iris, moons, sine\n")


def test_rounds_time_every_contender_in_turn_and_the_slow_ones_once(bench):
    calls = []
    contenders = {name: (lambda name=name: calls.append(name), 0.0) for name in ("a", "b", "sklearn sgd")}
    times = bench.interleaved(contenders, 3)
    assert calls == ["a", "b", "sklearn sgd", "a", "b", "a", "b"]
    assert times == {"a": [0.0, 0.0, 0.0], "b": [0.0, 0.0, 0.0], "sklearn sgd": [0.0]}


def test_paired_ratio_cancels_a_drift_that_best_over_best_keeps(bench):
    # "Theirs" is 1.2x slower in each round, but the machine doubled its speed in the last round
    # after our turn: best over best would call theirs the faster one.
    ours = [2.0, 2.0, 2.0]
    theirs = [2.4, 2.4, 1.2]
    assert min(theirs) / min(ours) == pytest.approx(0.6)
    assert bench.paired_ratio(theirs, ours) == pytest.approx(1.2)
    assert bench.paired_ratio([3.0, 9.0, 4.0], [1.0, 1.0, 2.0]) == 3.0  # median of 3, 9, 2
    assert bench.paired_ratio([5.0], [1.0, 2.0, 3.0]) == 5.0  # a contender timed in one round only


def test_quartiles_give_the_spread_of_a_paired_ratio_over_its_rounds(bench):
    assert bench.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert bench.quartiles([4.0, 1.0, 3.0, 2.0]) == (1.75, 3.25)  # unsorted rounds; between two rounds
    assert bench.quartiles([1.2]) == (1.2, 1.2)  # one round (--quick)


def row(speed_best: float, speed_paired: float) -> dict:
    """A contender's row: its speed relative to jax_mlp, the paired figure the median of 3 rounds."""
    return {"speed_vs_jax_mlp": speed_best, "speed_vs_jax_mlp_paired": speed_paired,
            "speed_vs_jax_mlp_rounds": [speed_paired / 2, speed_paired, speed_paired * 2]}


def results_with(torch_paired: float, torch_best: float, skip_torch_on_note: bool = False) -> dict:
    def rows(torch: bool) -> dict:
        rows = {"jax_mlp fit": row(1.0, 1.0), "hand-written lax.scan": row(0.5, 0.4)}
        if torch:
            rows["pytorch eager"] = row(1 / torch_best, 1 / torch_paired)
        return rows

    return {"workloads": {
        "note": {"rows": rows(not skip_torch_on_note), "fraction_of_matmul_rate": 0.001,
                 "fraction_of_matmul_rate_paired": 0.002, "fraction_of_matmul_rate_rounds": [0.002]},
        "mlp": {"rows": rows(True), "fraction_of_matmul_rate": 0.9, "fraction_of_matmul_rate_paired": 0.7,
                "fraction_of_matmul_rate_rounds": [0.6, 0.7, 0.8]}},
        "startup": {"default_over_import": 1.6, "default_over_import_paired": 1.4,
                    "default_over_import_rounds": [1.3, 1.4, 1.6]},
        "peak_rss_mb_60000x784": 840.0}


def test_the_target_table_reads_each_target_and_judges_it_on_the_paired_figure(bench):
    table = {t["target"]: t for t in bench.target_table(results_with(torch_paired=1.12, torch_best=1.05))}
    assert list(table) == [
        "note: fit / hand-written lax.scan >=", "note: fit / pytorch eager >=", "mlp: fit / hand-written lax.scan >=",
        "mlp: fit / pytorch eager >=", "mlp: fit / jitted matmul rate >=",
        "default command / `import jax, optax, hydra` <=", "peak resident MB, 60000 x 784 run <"]
    scan = table["mlp: fit / hand-written lax.scan >="]
    assert (scan["best_rounds"], scan["paired_rounds"], scan["bound"], scan["met"]) == (2.0, 2.5, 0.9, True)
    # the scan's speed 0.2, 0.4, 0.8 of ours in its rounds: fit / scan 5, 2.5, 1.25
    assert scan["paired_quartiles"] == pytest.approx((1.875, 3.75))
    torch = table["mlp: fit / pytorch eager >="]
    assert torch["best_rounds"] == pytest.approx(1.05) and torch["paired_rounds"] == pytest.approx(1.12)
    assert torch["met"] is True
    assert table["note: fit / pytorch eager >="]["met"] is False  # 1.12, not 100
    matmul = table["mlp: fit / jitted matmul rate >="]
    assert (matmul["best_rounds"], matmul["paired_rounds"], matmul["met"]) == (0.9, 0.7, False)
    assert matmul["paired_quartiles"] == pytest.approx((0.65, 0.75))
    command = table["default command / `import jax, optax, hydra` <="]
    assert (command["best_rounds"], command["paired_rounds"], command["met"]) == (1.6, 1.4, True)
    assert command["paired_quartiles"] == pytest.approx((1.35, 1.5))
    assert table["peak resident MB, 60000 x 784 run <"]["met"] is True


def test_a_target_whose_contender_did_not_run_is_left_out(bench):
    table = bench.target_table(results_with(1.0, 1.0, skip_torch_on_note=True))
    labels = [t["target"] for t in table]
    assert "note: fit / pytorch eager >=" not in labels and "mlp: fit / pytorch eager >=" in labels
    assert next(t for t in table if t["target"] == "mlp: fit / pytorch eager >=")["met"] is False


@pytest.mark.parametrize(("jax_platform", "cuda", "expected"), [
    ("cpu", False, "cpu"), ("cpu", True, "cpu"), ("gpu", True, "cuda"), ("gpu", False, None), ("tpu", True, None)])
def test_pytorch_trains_on_the_kind_of_device_jax_uses_or_not_at_all(bench, jax_platform, cuda, expected):
    assert bench.torch_device(jax_platform, cuda) == expected


def test_the_data_parallel_child_gets_four_cpu_devices_unless_jax_has_several(bench):
    one = bench.data_parallel_env({"PATH": "/bin", "XLA_FLAGS": "--xla_dump_to=/tmp/d"}, 1)
    assert one == {"PATH": "/bin", "JAX_PLATFORMS": "cpu",
                   "XLA_FLAGS": "--xla_dump_to=/tmp/d --xla_force_host_platform_device_count=4"}
    assert bench.data_parallel_env({"PATH": "/bin"}, 1)["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"
    assert bench.data_parallel_env({"PATH": "/bin"}, 8) == {"PATH": "/bin"}  # several GPUs: all of them


TINY = {"note": ([], 40), "mlp": (["data=blobs", "data.n=300", "data.features=8", "data.classes=3",
                                   "data.val_fraction=0", "data.test_fraction=0", "model=mlp", "model.hidden=[16,16]",
                                   "model.activation=relu", "trainer.batch_size=64", "trainer.steps=null",
                                   "trainer.epochs=1"], 10)}


@pytest.mark.parametrize("workload", sorted(TINY))
def test_every_contender_trains_a_tiny_workload_of_the_same_shape(bench, workload):
    overrides, steps = TINY[workload]
    s = bench.Setup(bench.Workload(workload, overrides, steps, 0.1, 5))
    prepared = {name: make(s) for name, make in bench.CONTENDERS.items()}
    if prepared["pytorch eager"] is None:  # torch is an optional extra
        del prepared["pytorch eager"]
    times = bench.interleaved(prepared, 2)
    assert set(times) >= {"jax_mlp fit", "python loop + jit step", "hand-written lax.scan", "sklearn sgd"}
    assert all(len(t) == (1 if name == "sklearn sgd" else 2) and min(t) > 0 for name, t in times.items())
    # scikit-learn trains whole epochs (on the full batch a tenth of them): its time is scaled to
    # the workload's steps: 40 steps against 4 epochs of 1; 10 steps against 2 epochs of 5 batches.
    assert prepared["sklearn sgd"][1] == {"note": 10.0, "mlp": 1.0}[workload]
