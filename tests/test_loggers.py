"""The metric writers a run's ``logger`` list turns on: jsonl, csv and TensorBoard event files."""

from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest
from conftest import read_jsonl

from jax_mlp import config, jobs

OVERRIDES = ["trainer.compilation_cache=false", "experiment=moons", "trainer.epochs=4", "trainer.log_every=19"]


def _events(folder: Path):
    """Every Event of the TFRecord files in `folder` (length, CRC, payload, CRC a record)."""
    from tensorboardX.proto import event_pb2

    for path in sorted(folder.glob("events.out.tfevents.*")):
        data, position = path.read_bytes(), 0
        while position < len(data):
            (length,) = struct.unpack("<Q", data[position:position + 8])
            yield event_pb2.Event.FromString(data[position + 12:position + 12 + length])
            position += 12 + length + 4


def test_jsonl_csv_and_tensorboard_hold_the_same_numbers(tmp_path):
    cfg = config.load(config.compose([*OVERRIDES, "logger=[jsonl,csv,tensorboard]"]))
    outcome = jobs.execute(cfg, tmp_path)
    assert outcome.status == "completed"
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 19, 38, 57, 76]

    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert list(rows[0]) == ["step", "epoch", "loss", "lr", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]
    assert [int(r["step"]) for r in rows] == [0, 19, 38, 57, 76]
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in records]
    assert rows[1]["val_loss"] == "" and float(rows[-1]["test_accuracy"]) == records[-1]["test_accuracy"]

    scalars: dict[str, list[tuple[int, float]]] = {}
    plugins, blobs = set(), b""
    for event in _events(tmp_path / "tensorboard"):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
            if value.metadata.plugin_data.plugin_name:
                plugins.add(value.metadata.plugin_data.plugin_name)
                blobs += value.metadata.plugin_data.content
    assert [step for step, _ in scalars["train/loss"]] == [0, 19, 38, 57, 76]
    for (_, logged), record in zip(scalars["train/loss"], records):
        assert logged == pytest.approx(record["loss"], rel=1e-6)
    assert [step for step, _ in scalars["val/loss"]] == [0, 76]
    assert scalars["test/accuracy"][0][1] == pytest.approx(records[-1]["test_accuracy"], rel=1e-6)
    assert {"lr", "epoch", "val/accuracy"} <= set(scalars)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert scalars["hparam/objective"][0][1] == pytest.approx(summary["objective"], rel=1e-6)
    assert "hparams" in plugins and b"optimizer.lr" in blobs and b"model.hidden" in blobs


def test_a_run_shorter_than_a_second_keeps_its_tensorboard_scalars(tmp_path, monkeypatch):
    """The event file is named by the second it opened in; the hparams view went to a second file
    of the same name, which overwrote the scalars' (an event file that did not parse)."""
    import tensorboardX.event_file_writer

    from jax_mlp.logging import TensorboardWriter

    monkeypatch.setattr(tensorboardX.event_file_writer.time, "time", lambda: 1796076380.0)  # one second
    writer = TensorboardWriter(tmp_path, {"optimizer.lr": 0.1})
    for step in (0, 10):
        writer.write({"step": step, "loss": 1.0 / (step + 1)})
    writer.close({"loss": 0.5, "objective": 0.25})
    scalars = [(event.step, value.tag, value.simple_value) for event in _events(tmp_path)
               for value in event.summary.value if value.HasField("simple_value")]
    assert scalars == [(0, "train/loss", 1.0), (10, "train/loss", pytest.approx(1 / 11)),
                       (0, "hparam/loss", 0.5), (0, "hparam/objective", 0.25)]
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_a_logger_list_without_jsonl_leaves_no_jsonl(tmp_path):
    cfg = config.load(config.compose([*OVERRIDES, "logger=[csv]"]))
    assert jobs.execute(cfg, tmp_path).status == "completed"
    assert (tmp_path / "metrics.csv").is_file() and not (tmp_path / "metrics.jsonl").exists()
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 6  # header and five log points


def test_a_resumed_csv_keeps_its_rows_up_to_the_checkpoint(tmp_path):
    from jax_mlp.logging import CsvWriter

    columns = ["step", "loss", "val_loss"]
    writer = CsvWriter(tmp_path / "metrics.csv", columns)
    for step in (0, 10, 20):
        writer.write({"step": step, "loss": step / 10, **({"val_loss": 1.5} if step == 0 else {})})
    writer.close()
    writer = CsvWriter(tmp_path / "metrics.csv", columns, resume_step=10)
    writer.write({"step": 20, "loss": 9.0})
    writer.close()
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [
        "step,loss,val_loss", "0,0.0,1.5", "10,1.0,", "20,9.0,"]


def test_tensorboard_without_tensorboardx_is_one_line_before_the_folder_is_touched(tmp_path, monkeypatch):
    import importlib.util

    from jax_mlp.errors import UserError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else real(name, *a))
    cfg = config.load(config.compose([*OVERRIDES, "logger=[jsonl,tensorboard]"]))
    with pytest.raises(UserError, match=r'^logger=\[\.\.\.,tensorboard\] needs tensorboardX: pip install -e '
                                        r'"\.\[tensorboard\]"'):
        jobs.execute(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
