"""The report's plots, as PNG bytes (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
from collections import defaultdict

import numpy as np

from scaleprof.core.files import user_cache_dir
from scaleprof.profile.types import LayerRow
from scaleprof.report.analysis import METRICS, category_times, strategy_label, top_layers
from scaleprof.report.fits import MetricFits, layer_predictions
from scaleprof.sweep.result import PointResult

UNITS = {"flops": (1e9, "GMACs per batch"), "params": (1e6, "M params"), "acts": (1e6, "M acts per batch"),
         "layers": (1, "layer")}
DPI = 90


def _plt():
    _keep_matplotlib_in_the_cache()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _keep_matplotlib_in_the_cache() -> None:
    """matplotlib keeps its font list under $MPLCONFIGDIR, else under $HOME (and, where it cannot, makes a
    temporary folder and logs a warning): point it into scaleprof's cache directory, or, without one,
    into a temporary folder of this process's own, removed when it ends. A user's MPLCONFIGDIR is kept."""
    if "MPLCONFIGDIR" in os.environ or "matplotlib" in sys.modules:
        return

    folder = user_cache_dir()
    try:
        if folder is None:
            raise OSError("no cache directory")
        (folder / "matplotlib").mkdir(parents=True, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder / "matplotlib")
    except OSError:                         # read-only or absent: a private folder for this process

        private = tempfile.mkdtemp(prefix="scaleprof-matplotlib-")
        atexit.register(shutil.rmtree, private, ignore_errors=True)
        os.environ["MPLCONFIGDIR"] = private


def _png(fig) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _log_axes(ax, x_base: float = 10) -> None:
    """Log-log axes with plain tick labels ("0.5", "2", "1e+06"): readable, and much faster to draw
    than matplotlib's default mathtext labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log", base=x_base)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))   # labels inside one decade too
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


# Op categories keep one colour in every plot (profile.mapping's categories first, then any other).
CATEGORY_ORDER = ("conv", "depthwise conv", "SE", "activation", "pooling", "reformat/copy", "elementwise",
                  "linear", "normalization", "other")
DETECTOR_CATEGORIES = ("head", "fusion", "resample")     # their own colours, past tab10's ten


def _colors(keys):
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    return {k: cmap(i % 10) for i, k in enumerate(sorted(keys))}


def _category_colors(cats):
    plt = _plt()
    cmap = plt.get_cmap("tab10")
    detector = plt.get_cmap("Set2")
    extra = sorted(c for c in cats if c not in CATEGORY_ORDER + DETECTOR_CATEGORIES)
    order = list(CATEGORY_ORDER) + extra
    return {c: detector(DETECTOR_CATEGORIES.index(c)) if c in DETECTOR_CATEGORIES else cmap(order.index(c) % 10)
            for c in cats}


def metric_fits_plot(group: str, rows: list[PointResult], fits: dict[str, MetricFits]) -> bytes:
    """Latency against flops, params, acts and (where counted) layers, coloured by strategy, with the
    linear fit and r."""
    plt = _plt()
    metrics = [m for m in METRICS if all(r.metric(m) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.4 * len(metrics), 3.8), squeeze=False)
    axes = axes[0]
    colors = _colors({strategy_label(r) for r in rows})
    y = np.array([r.latency_ms for r in rows])
    for ax, metric in zip(axes, metrics):
        unit, label = UNITS[metric]
        x = np.array([r.metric(metric) for r in rows]) / unit
        for key, color in colors.items():
            sel = [i for i, r in enumerate(rows) if strategy_label(r) == key]
            ax.scatter(x[sel], y[sel], color=color, label=key, s=28, zorder=3)
        f = fits[metric]
        title = f"{metric}"
        if f.linear is not None:
            xs = np.linspace(x.min(), x.max(), 50)
            ax.plot(xs, f.linear.predict(xs * unit), color="black", lw=1, ls="--", zorder=2)
            title += f": r={f.r:.3f}" if f.r is not None else ": r undefined"
            if f.r_log is not None:
                title += f", log r={f.r_log:.3f}"
            title += f", fit err {100 * f.linear.mape:.1f}%"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(label)
        ax.set_ylabel("latency (ms per batch)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{group}: latency vs complexity", fontsize=11)
    return _png(fig)


def scaling_plot(group: str, rows: list[PointResult]) -> bytes:
    """Log-log curves against s per strategy: latency (left) and activations (right)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    series = defaultdict(list)
    for r in rows:
        extra = f" b{r.batch}" if len({x.batch for x in rows}) > 1 else ""
        multi_model = len({x.model for x in rows}) > 1
        key = (f"{r['model']} " if multi_model else "") + strategy_label(r) + extra
        series[key].append(r)
    colors = _colors(series)
    for key, pts in sorted(series.items()):
        pts = sorted(pts, key=lambda p: float(p.scale))
        s = [float(p.scale) for p in pts]
        axes[0].plot(s, [p.latency_ms for p in pts], "o-", color=colors[key], label=key)
        axes[1].plot(s, [float(p.acts) / 1e6 for p in pts], "o-", color=colors[key], label=key)
    for ax, ylabel in zip(axes, ("latency (ms per batch)", "M acts per image")):
        _log_axes(ax, x_base=2)
        ax.set_xlabel("flops factor s")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[0].set_title("latency vs s (log-log)", fontsize=10)
    axes[1].set_title("activations vs s (log-log)", fontsize=10)
    fig.suptitle(f"{group}: scaling curves per strategy", fontsize=11)
    return _png(fig)


def top_layers_plot(title: str, layers: tuple[LayerRow, ...], n: int = 15) -> bytes:
    plt = _plt()
    top = top_layers(layers, n)[::-1]
    fig, ax = plt.subplots(figsize=(11, 0.28 * len(top) + 1.2))
    cats = sorted({l.category or "other" for l in top})
    colors = _category_colors(cats)
    names = [_short(l.name) for l in top]
    ax.barh(range(len(top)), [float(l.time_ms) for l in top], color=[colors[l.category or "other"] for l in top])
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel("median time per layer (ms)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[c]) for c in cats]
    ax.legend(handles, cats, fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def categories_plot(title: str, points: list[tuple[str, tuple[LayerRow, ...]]]) -> bytes:
    """Stacked bars: time by op category for each (label, layers)."""
    plt = _plt()
    per = [(label, category_times(layers)) for label, layers in points]
    cats = sorted({c for _, t in per for c in t}, key=lambda c: -sum(t.get(c, 0) for _, t in per))
    colors = _category_colors(cats)
    fig, ax = plt.subplots(figsize=(11, 0.35 * len(per) + 1.6))
    left = np.zeros(len(per))
    for cat in cats:
        vals = np.array([t.get(cat, 0.0) for _, t in per])
        ax.barh(range(len(per)), vals, left=left, color=colors[cat], label=cat)
        left += vals
    ax.set_yticks(range(len(per)))
    ax.set_yticklabels([label for label, _ in per], fontsize=8)
    ax.set_xlabel("sum of layer medians (ms)")
    ax.legend(fontsize=7, ncol=min(4, len(cats)), loc="lower right")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def layer_prediction_plot(title: str, layers: tuple[LayerRow, ...]) -> bytes:
    """Per layer: measured time against predicted flops and acts (log-log), with r."""
    plt = _plt()
    fits = layer_predictions(layers)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    cats = sorted({l.category or "other" for l in layers})
    colors = _category_colors(cats)
    for ax, metric in zip(axes, ("flops", "acts")):
        for cat in cats:
            pts = [(float(getattr(l, metric)), float(l.time_ms)) for l in layers
                   if (l.category or "other") == cat and getattr(l, metric) and float(l.time_ms) > 0]
            if pts:
                ax.scatter(*zip(*pts), s=10, color=colors[cat], label=cat, alpha=0.7)
        f = fits[metric]
        _log_axes(ax)
        ax.set_xlabel(f"predicted {metric} (per batch)")
        ax.set_ylabel("measured time (ms)")
        r = f"r={f.r:.3f}, log r={f.r_log:.3f}" if f.r is not None and f.r_log is not None else "r undefined"
        ax.set_title(f"time vs {metric}: {r}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def _short(name: str, width: int = 60) -> str:
    return name if len(name) <= width else "..." + name[-(width - 3):]
