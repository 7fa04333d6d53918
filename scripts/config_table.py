"""Print the README's table of every config option and its default: ``python scripts/config_table.py``.

One row a group option (``model=mlp``, ``data=sine``, ...), with every key that option has and its
default, read from the configs the training script composes; the data keys every source shares are
listed once (row ``data=*``).
"""

from __future__ import annotations

import argparse
import json

from omegaconf import OmegaConf

from jax_mlp import config

GROUPS = {"model": ["seed_note", "mlp"],
          "data": ["seed_note", "sine", "moons", "spirals", "blobs", "digits", "iris", "wine", "breast_cancer",
                   "diabetes", "csv", "parquet", "openml", "npz", "mnist", "fashion_mnist"],
          "optimizer": ["sgd", "momentum", "adam", "adamw"],
          "trainer": ["default"]}
SHARED_DATA_KEYS = ("val_fraction", "test_fraction", "standardize", "standardize_targets", "missing",
                    "drop_missing_labels", "seed")


def _value(value: object) -> str:
    """A default as one would write it on the command line (long lists cut)."""
    if isinstance(value, (list, dict)):
        text = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    else:
        text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def rows() -> list[tuple[str, str]]:
    """``(option, "key=default, ...")`` pairs, in the order of `GROUPS`, then the other nodes."""
    table = []
    for group, options in GROUPS.items():
        for option in options:
            node = OmegaConf.to_container(config.compose([f"{group}={option}"])[group], resolve=True)
            keys = [k for k in node if not (group == "data" and k in SHARED_DATA_KEYS and option != "seed_note")]
            if group == "model" and option == "seed_note":
                keys = [k for k in keys if k != "weights"] + ["weights"]
            table.append((f"{group}={option}", ", ".join(f"`{k}={_value(node[k])}`" for k in keys)))
        if group == "data":
            shared = OmegaConf.to_container(config.compose(["data=sine"]).data)
            table.append(("data=* (every source but seed_note)",
                          ", ".join(f"`{k}={_value(shared[k])}`" for k in SHARED_DATA_KEYS)))
    composed = OmegaConf.to_container(config.compose([]), resolve=True)
    table.append(("logger (a list)", "`[jsonl]`; options `jsonl`, `csv`, `tensorboard`"))
    table.append(("distributed", ", ".join(f"`{k}={_value(v)}`" for k, v in composed["distributed"].items())))
    table.append(("top level", f"`seed={composed['seed']}`"))
    return table


def markdown() -> str:
    return "\n".join(["| option | keys and their defaults |", "|---|---|",
                      *(f"| `{option}` | {keys} |" if not option.startswith(("data=*", "logger", "top", "distributed"))
                        else f"| {option} | {keys} |" for option, keys in rows())])


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(markdown())
