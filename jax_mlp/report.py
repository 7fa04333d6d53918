"""What runs leave behind for people and sweepers: ``summary.json``, and a sweep's summary table."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from jax_mlp import files


def counted(count: int, noun: str) -> str:
    """``1 job``, ``0 jobs``, ``2 jobs``: `count` with `noun`, plural unless the count is one."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def finite_or_inf(value: float) -> float:
    """`value`, or +inf where it is NaN or infinite: an objective a sweeper can rank."""
    return value if math.isfinite(value) else math.inf


def json_number(value: float) -> float | str:
    """A float JSON can hold: finite numbers as they are, others as the strings "inf"/"nan"."""
    return value if math.isfinite(value) else str(value)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's ``summary.json`` as a dict, or None when the run wrote none (yet)."""
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Writes a run's record (``summary.json``, ``eval.json``) as JSON, atomically; top-level
    non-finite floats become strings ("inf", "nan")."""
    files.write_json(path, {k: json_number(v) if isinstance(v, float) else v
                            for k, v in record.items()})


def metrics_table(final: dict[str, dict[str, float]]) -> str:
    """A run's final metrics as an aligned text table: a row a split, a column a metric.

    ``{"train": {"loss": 0.1, "accuracy": 0.9}, "val": {...}}`` ->
    ``split  loss  accuracy`` / ``train  0.1   0.9`` / ...
    """
    names = list(dict.fromkeys(name for values in final.values() for name in values))
    rows = [["split", *names]] + [[split, *(f"{values[n]:.6g}" if n in values else "" for n in names)]
                                  for split, values in final.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


SUMMARY_COLUMNS = ("job", "overrides", "status", "objective")


def sweep_rows(sweep_dir: Path, missing: str = "failed", started: str | None = None) -> list[dict[str, Any]]:
    """One row per job folder under `sweep_dir` (a folder holding ``.hydra/overrides.yaml``); a job
    without ``summary.json`` has status `missing`, or `started` (when given) if it began training
    (it wrote ``metrics.jsonl``)."""
    import yaml

    rows = []
    for overrides_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        overrides = [o for o in yaml.safe_load(overrides_file.read_text()) or [] if not _resume_switch(o)]
        row: dict[str, Any] = {"job": str(job_dir.relative_to(sweep_dir)), "overrides": " ".join(overrides)}
        if (summary := read_summary(job_dir)) is not None:
            row["status"] = summary.get("status", "unknown")
            row["objective"] = float(summary.get("objective", math.inf))
            for key, value in summary.items():
                if key.startswith(("train_", "val_", "test_")) and isinstance(value, (int, float, str)):
                    row[key] = float(value)
            if stopping := summary.get("early_stopping"):  # the best evaluation, and where it stopped early
                row.update(best_step=stopping["best_step"], best_value=stopping["best_value"],
                           stopped_at=stopping["stopped_at"] or "")
        else:
            began = started is not None and (job_dir / "metrics.jsonl").is_file()
            row.update(status=started if began else missing, objective=math.inf)
        rows.append(row)
    rows.sort(key=lambda r: (not math.isfinite(r["objective"]), r["objective"], r["job"]))
    return rows


def _resume_switch(override: str) -> bool:
    """Whether `override` is ``trainer.resume=true`` (or false), which a resumed sweep adds to every
    job's overrides: how a job ran, not what it tried (Hydra's ``override_dirname`` leaves it out too)."""
    key, _, value = override.partition("=")
    return key.lstrip("+~") == "trainer.resume" and value.lower() in ("true", "false")


def _cell(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_sweep_summary(sweep_dir: Path, missing: str = "failed", started: str | None = None
                        ) -> list[dict[str, Any]]:
    """Writes ``sweep_summary.csv`` and ``sweep_summary.md`` at the sweep's root: one row a job
    (its folder, overrides, status, objective and final metrics), best objective first.

    A job without ``summary.json`` is listed with status `missing`: ``failed`` when the sweep ran
    to its end, ``not started`` when a signal stopped it; or, when given, `started` if it began
    training (``unfinished`` after a second Ctrl-C, which ends the sweep's process while its
    workers still save).

    Returns:
      The rows, as written.
    """
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir, missing, started)
    metrics = sorted({k for row in rows for k in row} - set(SUMMARY_COLUMNS))
    columns = [*SUMMARY_COLUMNS, *metrics]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in rows)
    files.write_atomic(sweep_dir / "sweep_summary.csv", buffer.getvalue().encode())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    files.write_atomic(sweep_dir / "sweep_summary.md", ("\n".join(lines) + "\n").encode())
    return rows
