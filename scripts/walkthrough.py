"""Walk through the seed note with JAX: forward values, deltas, gradients and one SGD step.

    python scripts/walkthrough.py          # the explanation, as text
    python scripts/walkthrough.py --json   # {"loss", "grads", "params_after"} as one JSON object
    python scripts/walkthrough.py --plot network.png   # also draw the network, values and gradients labelled

Everything is computed in float64 from the configs the training script uses (`model=seed_note`,
`data=seed_note`, `optimizer=sgd`), and set beside the figures the note worked out by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jax_mlp import config, errors, losses, model  # noqa: E402

# The note's hand-worked figures (its two-decimal rounding included), by parameter.
NOTE_GRADS = {
    "W1[0,0]": -0.13, "W1[0,1]": -0.35, "b1[0]": 0.23, "b1[1]": 0.5,
    "W2[0,0]": 0.23, "W2[0,1]": 0.09, "W2[1,0]": 0.28, "W2[1,1]": 0.10,
    "b2[0]": 0.57, "b2[1]": 0.27,
    "W3[0,0]": 6.975, "W3[1,0]": 7.519, "b3[0]": 7.667,
}
NOTE_AFTER = {
    "W1[0,0]": 1.013, "W1[0,1]": 2.035, "b1[0]": -0.023, "b1[1]": 0.95,
    "W2[0,0]": 0.977, "W2[0,1]": 1.991, "W2[1,0]": 2.972, "W2[1,1]": 3.99,
    "b2[0]": -0.057, "b2[1]": 0.973,
    "W3[0,0]": 0.3025, "W3[1,0]": 1.2481, "b3[0]": 0.2333,
}
# Where the note's own writing moves a figure (see shared/seed/README.md).
NOTE_REMARKS = {
    "W1[0,0]": "the note writes -0.17 beside -0.13 ('as computed'); the exact value agrees with -0.13",
    "b1[0]": "the note writes 0.27 beside 0.23 ('as computed'); the exact value agrees with 0.23",
    "b2[1]": "inside the sum the note writes 0.62 for 0.02; its result 0.27 uses 0.02",
}


def parameter_names(params: model.Params) -> list[tuple[str, int, str, tuple[int, ...]]]:
    """``(name, layer, "w" | "b", index)`` for every scalar parameter, in the note's order."""
    names = []
    for layer, p in enumerate(params):
        for kind in ("w", "b"):
            for index in np.ndindex(*p[kind].shape):
                label = f"{kind.upper()}{layer + 1}" if kind == "w" else f"b{layer + 1}"
                names.append((f"{label}[{','.join(map(str, index))}]", layer, kind, index))
    return names


def note_problem() -> tuple[model.Params, jax.Array, jax.Array, dict, float]:
    """The note's params, data, model options and learning rate, read from ``conf/``."""
    cfg = config.load(config.compose(["model=seed_note", "data=seed_note", "optimizer=sgd"]))
    x = jnp.asarray(cfg.data.x, jnp.float64)
    y = jnp.asarray(cfg.data.y, jnp.float64)
    sizes = (x.shape[1], *cfg.model.hidden, y.shape[1])
    params = model.explicit_params(cfg.model.weights, sizes, dtype=jnp.float64)
    options = {"activation": cfg.model.activation, "output_activation": cfg.model.output_activation}
    return params, x, y, options, cfg.optimizer.lr


def walk(params: model.Params, x: jax.Array, y: jax.Array, options: dict, lr: float) -> dict:
    """Forward values, deltas, gradients and the params after one SGD step, as arrays."""
    outputs = model.forward(params, x, **options)

    def loss_of(params: model.Params, offsets: list[jax.Array]) -> jax.Array:
        return losses.mse(model.forward(params, x, offsets=offsets, **options)[-1], y)

    zeros = [jnp.zeros_like(h) for h in outputs]
    loss, (grads, deltas) = jax.value_and_grad(loss_of, argnums=(0, 1))(params, zeros)
    after = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
    return {"outputs": outputs, "loss": loss, "deltas": deltas, "grads": grads, "after": after}


def as_json(result: dict) -> dict:
    """The ``--json`` object: loss, grads and params_after as nested lists."""
    to_lists = lambda tree: jax.tree_util.tree_map(lambda a: np.asarray(a).tolist(), tree)  # noqa: E731
    return {"loss": float(result["loss"]), "grads": to_lists(result["grads"]),
            "params_after": to_lists(result["after"])}


def _row(values: jax.Array) -> str:
    return "[" + ", ".join(f"{v:.6f}" for v in np.asarray(values)) + "]"


def explain(params: model.Params, x: jax.Array, y: jax.Array, options: dict, lr: float, result: dict) -> str:
    """The walkthrough as text."""
    lines = [
        "The seed note: a 1-2-2-1 network, sigmoid hidden layers, linear output, MSE on three points.",
        f"x = {_row(x[:, 0])}, y = {_row(y[:, 0])}; every figure below is float64.",
        "",
        "Forward pass, h = act(h_prev @ W + b), one value per sample:",
    ]
    for layer, h in enumerate(result["outputs"]):
        name = f"h{layer + 1}" if layer < len(params) - 1 else "y_hat"
        for unit in range(h.shape[1]):
            lines.append(f"  {name} unit {unit + 1}: {_row(h[:, unit])}")
    lines += [f"  y_hat - y: {_row(result['outputs'][-1][:, 0] - y[:, 0])}",
              f"  L = 1/3 sum (y_hat - y)^2 = {float(result['loss']):.6f}", "",
              "Back-propagated deltas dL/dz (z the pre-activation), from the output down:"]
    for layer in reversed(range(len(params))):
        delta = result["deltas"][layer]
        for unit in range(delta.shape[1]):
            lines.append(f"  layer {layer + 1} unit {unit + 1}: {_row(delta[:, unit])}")
    header = f"  {'parameter':<10}{'note':>10}{'exact':>12}{'exact-note':>12}"
    for title, key, note in (("Gradients from jax.grad beside the note's:", "grads", NOTE_GRADS),
                             (f"After one SGD step, lr {lr:g}:", "after", NOTE_AFTER)):
        lines += ["", title, header]
        for name, layer, kind, index in parameter_names(params):
            exact = float(result[key][layer][kind][index])
            lines.append(f"  {name:<10}{note[name]:>10g}{exact:>12.6f}{exact - note[name]:>12.6f}")
    worst = max(abs(float(result["grads"][l][k][i]) - NOTE_GRADS[n])
                for n, l, k, i in parameter_names(params))
    lines += ["", "Where the note's rounding moves a figure:",
              f"  every intermediate is rounded to two decimals, so gradients differ by up to {worst:.4f};"]
    lines += [f"  {name}: {remark}" for name, remark in NOTE_REMARKS.items()]
    return "\n".join(lines)


def _values(values: jax.Array) -> str:
    return ", ".join(f"{v:.2f}" for v in np.asarray(values))


def draw(params: model.Params, x: jax.Array, result: dict, path: str) -> None:
    """The network as a picture: each unit with its values on the three samples and, for the
    hidden and output units, its bias and the bias's gradient; each weight with its value and its
    gradient (blue: the gradient is positive, so SGD lowers the weight; red: it raises it)."""
    from jax_mlp import plots

    plt = plots.pyplot()
    sizes = [x.shape[1], *(p["b"].shape[0] for p in params)]
    place = {(layer, unit): (3.2 * layer, (size - 1) / 2 - unit * 1.6)
             for layer, size in enumerate(sizes) for unit in range(size)}
    figure, axes = plt.subplots(figsize=(12, 5.5), dpi=100)
    for layer, p in enumerate(params):
        for (i, j), w in np.ndenumerate(np.asarray(p["w"])):
            (x0, y0), (x1, y1) = place[(layer, i)], place[(layer + 1, j)]
            grad = float(result["grads"][layer]["w"][i, j])
            axes.plot([x0, x1], [y0, y1], color="tab:blue" if grad > 0 else "tab:red", lw=1.2, zorder=1)
            axes.text(x0 + 0.35 * (x1 - x0), y0 + 0.35 * (y1 - y0),
                      f"W{layer + 1}[{i},{j}]={w:g}\ndL/dw={grad:.3f}", fontsize=8, ha="center", va="center",
                      bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85}, zorder=3)
    for (layer, unit), (cx, cy) in place.items():
        axes.add_patch(plt.Circle((cx, cy), 0.32, facecolor="lightyellow", edgecolor="black", zorder=2))
        values = x[:, unit] if layer == 0 else result["outputs"][layer - 1][:, unit]
        name = "x" if layer == 0 else "y_hat" if layer == len(sizes) - 1 else f"h{layer}[{unit}]"
        text = f"{name}\n[{_values(values)}]"
        if layer > 0:
            b, grad = float(params[layer - 1]["b"][unit]), float(result["grads"][layer - 1]["b"][unit])
            text += f"\nb={b:g}, dL/db={grad:.3f}"
        axes.text(cx, cy - 0.42, text, fontsize=8, ha="center", va="top", zorder=3)
    axes.set_title(f"the seed note: L = {float(result['loss']):.4f} on x = [{_values(x[:, 0])}]; "
                   "each unit's values on the three samples")
    axes.set_xlim(-1, 3.2 * (len(sizes) - 1) + 1)
    axes.set_ylim(-2.6, 1.6)
    axes.set_aspect("equal")
    axes.axis("off")
    plots.save(figure, Path(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--plot", metavar="PNG", help="also draw the network with its values and gradients")
    args = parser.parse_args(argv)
    problem = note_problem()
    result = walk(*problem)
    print(json.dumps(as_json(result)) if args.json else explain(*problem, result))
    if args.plot:
        params, x = problem[0], problem[1]
        try:
            draw(params, x, result, args.plot)
        except OSError as error:  # no such folder, no permission
            errors.exit_user_error(f"--plot {args.plot}: {error.strerror}")
        except ValueError as error:  # matplotlib: a format it cannot write
            errors.exit_user_error(f"--plot {args.plot}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
