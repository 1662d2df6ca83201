"""PNG figures for the command line: unit norms over checkpoints, and bound ranges.

Both functions draw with matplotlib's Agg backend (no display needed) into a
figure of a fixed size in pixels, so a script or a test knows what it gets.
matplotlib is an optional dependency: ``pip install tf1norm[plots]``.
"""

import numpy as np

from tf1norm.cli.errors import CommandError

METHOD_COLORS = {
    "interval": "tab:red",
    "crown": "tab:orange",
    "alpha-crown": "tab:green",
    "exact": "tab:blue",
    "sample": "tab:gray",
}


def _pyplot():
    try:
        import matplotlib
    except ImportError as error:
        raise CommandError(
            "plots need matplotlib: pip install 'tf1norm[plots]' (or pip install matplotlib)"
        ) from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, figure, path, dpi):
    try:
        figure.savefig(path, dpi=dpi)
    except (OSError, ValueError) as error:
        raise CommandError(
            f"cannot write plot {path!r}: {error}; check the directory exists "
            "and the name ends in .png, .pdf or .svg"
        ) from error
    finally:
        plt.close(figure)


def plot_norms(series, path, threshold=None, size=(1000, 600), dpi=100):
    """Per-layer distributions of per-unit norms over checkpoints, one panel per layer.

    Args:
      series: ``[(label, {layer name: 1-D array of unit norms})]`` in step order,
        one entry per checkpoint.
      path: the image file to write (``.png``).
      threshold: draw this max-norm as a dashed line, if given.
      size: ``(width, height)`` of the image in pixels.
      dpi: dots per inch (the size in inches is ``size / dpi``).
    """
    plt = _pyplot()
    layers = sorted({name for _, norms in series for name in norms})
    columns = min(len(layers), 3)
    rows = -(-len(layers) // columns)
    figure, axes = plt.subplots(
        rows, columns, squeeze=False, figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi
    )
    for panel, layer in zip(axes.ravel(), layers):
        _norm_panel(panel, layer, series, threshold)
    for panel in axes.ravel()[len(layers) :]:
        panel.set_visible(False)
    figure.tight_layout()
    _save(plt, figure, path, dpi)


def _norm_panel(panel, layer, series, threshold):
    present = [(label, norms[layer]) for label, norms in series if layer in norms]
    positions = np.arange(len(present))
    panel.boxplot(
        [values for _, values in present],
        positions=positions,
        widths=0.6,
        showfliers=True,
        flierprops={"markersize": 2},
    )
    panel.plot(positions, [np.median(v) for _, v in present], color="tab:blue", lw=1)
    if threshold:
        panel.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"max norm {threshold:g}")
        panel.legend(fontsize="small", loc="lower right")
    panel.set_xticks(
        positions,
        [label for label, _ in present],
        fontsize="small",
        rotation=45 if len(present) > 6 else 0,
    )
    panel.set_title(layer, fontsize="medium")
    panel.set_xlabel("step")
    panel.set_ylabel("unit L2 norm")


def plot_bounds(results, path, size=(1000, 500), dpi=100):
    """Each output's range per method, side by side: one vertical bar per (output, method).

    Args:
      results: ``{method: (low, high)}`` with one entry per output in each array.
      path: the image file to write (``.png``).
      size: ``(width, height)`` of the image in pixels.
      dpi: dots per inch.
    """
    plt = _pyplot()
    figure, panel = plt.subplots(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    width = 0.8 / len(results)
    for k, (method, (low, high)) in enumerate(results.items()):
        x = np.arange(len(low)) - 0.4 + width * (k + 0.5)
        inner = method == "sample"  # drawn hollow: a sampled range, not a bound
        panel.bar(
            x,
            np.asarray(high) - np.asarray(low),
            width * 0.9,
            bottom=low,
            color=METHOD_COLORS.get(method, "black"),
            fill=not inner,
            hatch="//" if inner else None,
            edgecolor=METHOD_COLORS.get(method, "black"),
            label=method + (" (inner range, not a bound)" if inner else ""),
        )
    panel.set_xticks(np.arange(len(low)))
    panel.set_xlabel("output")
    panel.set_ylabel("output range")
    panel.legend(fontsize="small")
    panel.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    _save(plt, figure, path, dpi)
