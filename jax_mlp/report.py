"""What a run leaves behind for people and sweepers: ``summary.json``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jax_mlp import files


def finite_or_inf(value: float) -> float:
    """`value`, or +inf where it is NaN or infinite: an objective a sweeper can rank."""
    return value if math.isfinite(value) else math.inf


def json_number(value: float) -> float | str:
    """A float JSON can hold: finite numbers as they are, others as the strings "inf"/"nan"."""
    return value if math.isfinite(value) else str(value)


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Writes ``summary.json`` atomically; non-finite floats become strings ("inf")."""
    files.write_json(path, {k: json_number(v) if isinstance(v, float) else v
                            for k, v in summary.items()})
