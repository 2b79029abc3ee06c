"""report.html beside each artifact's model: one self-contained page (PNG figures as data: URIs,
the same numbers as HTML tables) made from the artifact alone: its manifest, its model.tflite run
through the function's own predictor, and the test split it was evaluated on.

No TensorFlow here. matplotlib's object API with the Agg canvas: no pyplot, no global figures.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mlcore.predictor import Predictor
from mlcore.registry import MANIFEST_FILE, MODEL_FILE
from training.evaluate import describe_stop, still_improving_warning, what_to_try, wilson_interval
from training.manifest import REPORT_FILE

MAX_MISCLASSIFIED = 48  # tiles in the grid of wrong answers (the most confident ones first)
GRID_COLUMNS = 8
ANNOTATE_CLASSES = 20  # confusion matrices with more classes show colour only (counts in a table)
TICK_CLASSES = 40  # beyond this, every k-th class name on the confusion matrices' axes
DPI = 100


# ---- numbers, formatted one way everywhere on the page


def percent(fraction: float) -> str:
    return f"{fraction:.2%}"


def interval(ci95: Sequence[float]) -> str:
    return f"{ci95[0]:.1%} to {ci95[1]:.1%}"


def count(n: int) -> str:
    return f"{n:,}"


def short(label: str, width: int = 14) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def chance_level(manifest: dict) -> float:
    """The accuracy of always answering the test split's most common class (the gate's bar;
    1/classes for a balanced set), for the accuracy plots."""
    for check in manifest.get("evaluation", {}).get("gate", {}).get("checks", []):
        if check.get("name") == "above_chance":
            return float(check["majority_share"])
    return 1 / max(1, len(manifest.get("labels", [])))


CHANCE_STYLE = {"color": "#b00020", "linestyle": ":", "linewidth": 1.2}


# ---- figures


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def learning_curves_figure(
    history: dict[str, list[float]], sizes: dict[str, int], chance: float | None = None
) -> Figure:
    """Loss and accuracy per epoch, train and validation; accuracy with 95% Wilson bands and
    the chance level."""
    figure = Figure(figsize=(10, 4), dpi=DPI, layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for prefix, split, style in (("", "train", "-o"), ("val_", "validation", "--s")):
            values = history.get(prefix + metric)
            if not values:
                continue
            epochs = np.arange(1, len(values) + 1)
            axes.plot(epochs, values, style, markersize=4, label=f"{split}")
            n = sizes.get(split)
            if metric == "accuracy" and n:
                lows, highs = zip(*(wilson_interval(round(v * n), n) for v in values), strict=True)
                axes.fill_between(epochs, lows, highs, alpha=0.2, label=f"{split} 95% CI (n={n})")
        if metric == "accuracy" and chance is not None:
            axes.axhline(chance, **CHANCE_STYLE, label=f"chance ({chance:.0%})")
        axes.set_title(metric)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    return figure


def _confusion_axes(axes, confusion: np.ndarray, labels: list[str], title: str):
    """Colour: share of each true class (row-normalised); text: counts, when legible."""
    totals = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    k = len(labels)
    step = 1 if k <= TICK_CLASSES else math.ceil(k / TICK_CLASSES)
    ticks = np.arange(0, k, step)
    names = [short(labels[i], 10) for i in ticks]
    axes.set_xticks(ticks, names, rotation=90 if k > 10 else 0, fontsize="small")
    axes.set_yticks(ticks, names, fontsize="small")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title, fontsize="medium")
    if k <= ANNOTATE_CLASSES:
        for (i, j), value in np.ndenumerate(confusion):
            if value:
                axes.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize="small" if k <= 12 else "x-small",
                    color="white" if shares[i, j] > 0.5 else "black",
                )
    return image


def confusion_figure(float_score: dict, quantized_score: dict, labels: list[str], mode: str):
    """The float and the quantized model's confusion matrices side by side, one colour scale."""
    side = min(10.0, max(4.5, 0.45 * len(labels)))
    figure = Figure(figsize=(2 * side + 1.2, side + 0.4), dpi=DPI, layout="constrained")
    panels = figure.subplots(1, 2)
    for axes, name, score in zip(
        panels, ("float", mode), (float_score, quantized_score), strict=True
    ):
        title = f"{name}: {percent(score['accuracy'])} ({interval(score['ci95'])}, n={score['n']})"
        image = _confusion_axes(axes, np.asarray(score["confusion"]), labels, title)
    figure.colorbar(image, ax=list(panels), shrink=0.8, label="share of the true class")
    return figure


def per_class_figure(
    float_per_class: dict, quantized_per_class: dict, mode: str, chance: float | None = None
) -> Figure:
    """Per-class accuracy of both models with 95% Wilson intervals, one row per class; the
    chance line is 1/classes (a random guess's share of any class)."""
    labels = list(quantized_per_class)
    k = len(labels)
    figure = Figure(figsize=(8, min(16.0, max(3.0, 0.32 * k + 1.2))), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    rows = np.arange(k)
    for offset, per_class, name, marker in (
        (-0.18, float_per_class, "float", "o"),
        (0.18, quantized_per_class, mode, "s"),
    ):
        scores = [per_class[label] for label in labels]
        accuracy = np.array([s["accuracy"] for s in scores])
        low = np.array([s["ci95"][0] for s in scores])
        high = np.array([s["ci95"][1] for s in scores])
        axes.errorbar(
            accuracy,
            rows + (offset if k <= 40 else 0.0),
            xerr=[accuracy - low, high - accuracy],
            fmt=marker,
            markersize=4 if k <= 40 else 2,
            capsize=2,
            label=f"{name} (95% CI)",
        )
    step = 1 if k <= 60 else math.ceil(k / 60)
    axes.set_yticks(rows[::step], [short(labels[i]) for i in rows[::step]], fontsize="small")
    axes.set_ylim(k - 0.5, -0.5)  # first class on top
    lowest = min(s["ci95"][0] for d in (float_per_class, quantized_per_class) for s in d.values())
    if chance is not None:
        axes.axvline(chance, **CHANCE_STYLE, label=f"chance ({chance:.0%})")
        lowest = min(lowest, chance)
    axes.set_xlim(max(0.0, lowest - 0.05), 1.01)  # markers at 1.0 stay whole
    axes.set_xlabel("accuracy on the test split (per true class)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize="small", loc="lower left")
    return figure


def comparison_figure(
    evaluation: dict, sizes: dict, mode: str, chance: float | None = None
) -> Figure:
    """Bytes and accuracy (with 95% intervals) of the float32 and the quantized model, beside
    the chance level."""
    figure = Figure(figsize=(10, 3.5), dpi=DPI, layout="constrained")
    size_axes, accuracy_axes = figure.subplots(1, 2)
    names = ["float32", mode]
    values = [sizes["float32_tflite_bytes"], sizes["tflite_bytes"]]
    bars = size_axes.barh(names, [v / 1024 for v in values], color=["#888888", "#1f77b4"])
    size_axes.bar_label(bars, [f"{count(v)} bytes" for v in values], padding=3, fontsize="small")
    size_axes.set_xlim(0, max(values) / 1024 * 1.45)
    size_axes.set_xlabel("TFLite model size (KiB)")
    size_axes.invert_yaxis()
    scores = [evaluation["float"], evaluation["quantized"]]
    accuracy = np.array([s["accuracy"] for s in scores])
    low = np.array([s["ci95"][0] for s in scores])
    high = np.array([s["ci95"][1] for s in scores])
    accuracy_axes.errorbar(
        accuracy, [0, 1], xerr=[accuracy - low, high - accuracy], fmt="o", capsize=4
    )
    accuracy_axes.set_yticks([0, 1], names)
    accuracy_axes.set_ylim(1.5, -0.5)
    for row, score in enumerate(scores):
        accuracy_axes.annotate(
            f"{percent(score['accuracy'])} ({interval(score['ci95'])}, n={score['n']})",
            (score["accuracy"], row),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize="small",
        )
    lowest = min(low)
    if chance is not None:
        accuracy_axes.axvline(chance, **CHANCE_STYLE, label=f"chance ({chance:.0%})")
        accuracy_axes.legend(fontsize="small", loc="lower right")
        lowest = min(lowest, chance)
    accuracy_axes.set_xlim(max(0.0, lowest - 0.05), min(1.0, max(high) + 0.02))
    accuracy_axes.set_xlabel("test accuracy, 95% Wilson interval")
    accuracy_axes.grid(axis="x", alpha=0.3)
    return figure


def as_image(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One example, pixels 0..255, as imshow takes it: grey (H, W) or (H, W, 1), or RGB."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        return x, "gray"
    if x.ndim == 3 and x.shape[-1] == 3:
        return np.clip(x, 0, 255).astype(np.uint8), None
    raise ValueError(f"an image is (H, W), (H, W, 1) or (H, W, 3); got {x.shape}")


def misclassified(probabilities: np.ndarray, y: np.ndarray, cap: int = MAX_MISCLASSIFIED):
    """Indices of the examples the model gets wrong, the most confident mistakes first (then in
    test-split order), at most `cap`; and how many it gets wrong in all."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y))
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.lexsort((wrong, -confidence))]
    return order[:cap], len(wrong)


def misclassified_figure(
    x: np.ndarray, y: np.ndarray, probabilities: np.ndarray, indices, labels: list[str]
) -> Figure:
    """A grid of test images with their true and predicted class (and the confidence)."""
    columns = min(GRID_COLUMNS, max(1, len(indices)))
    rows = max(1, math.ceil(len(indices) / columns))
    figure = Figure(figsize=(1.5 * columns, 1.75 * rows), dpi=DPI, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.set_axis_off()
    for axes, index in zip(grid.flat, indices, strict=False):
        image, cmap = as_image(x[index])
        axes.imshow(image, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        predicted = int(probabilities[index].argmax())
        axes.set_title(
            f"#{index} true {short(labels[int(y[index])], 8)}\n"
            f"pred {short(labels[predicted], 8)} ({probabilities[index, predicted]:.2f})",
            fontsize="small",
            color="#b00020",
        )
    return figure


# ---- the page


def data_uri(content: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(content).decode("ascii")


def img(figure: Figure, alt: str) -> str:
    content = png(figure)
    return f'<img src="{data_uri(content)}" alt="{html.escape(alt)}">'


def table(table_id: str, header: list[str], rows: list[tuple[dict, list]]) -> str:
    """rows: (attributes of <tr>, [(class, text) cells])."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for attributes, cells in rows:
        attrs = "".join(f' {k}="{html.escape(str(v))}"' for k, v in attributes.items())
        tds = "".join(f'<td class="{c}">{html.escape(str(t))}</td>' for c, t in cells)
        body.append(f"<tr{attrs}>{tds}</tr>")
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(body)}</table>'


def score_cells(prefix: str, score: dict) -> list[tuple[str, str]]:
    return [
        (f"{prefix}accuracy", percent(score["accuracy"])),
        (f"{prefix}ci95", interval(score["ci95"])),
        (f"{prefix}n", count(score["n"])),
    ]


def history_section(manifest: dict) -> str:
    history = manifest.get("training", {}).get("history") or {}
    stopped = manifest.get("model", {}).get("stopped")
    if not history.get("loss"):
        return "<p>No training history in the manifest (a model converted, not trained here).</p>"
    sizes = manifest.get("dataset", {}).get("sizes", {})
    keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if history.get(k)]
    rows = []
    for epoch in range(len(history["loss"])):
        cells = [("epoch", str(epoch + 1))]
        for key in keys:
            value = history[key][epoch]
            if key.endswith("accuracy"):
                n = sizes.get("validation" if key.startswith("val_") else "train", 0)
                text = percent(value)
                if n:
                    text += f" ({interval(wilson_interval(round(value * n), n))})"
            else:
                text = f"{value:.4f}"
            cells.append((key, text))
        rows.append(({"data-epoch": epoch + 1}, cells))
    note = (
        f"<p>Keras' per-epoch figures. Validation: the {count(sizes.get('validation', 0))} "
        f"held-out validation examples after each epoch. Train: the running mean over the epoch's "
        f"batches while the weights change (n={count(sizes.get('train', 0))}), so not a held-out "
        "estimate. Intervals: 95% Wilson.</p>"
    )
    warning = still_improving_warning(stopped) if stopped else None
    why = (
        f'<p id="stopped">Training {html.escape(describe_stop(stopped))}.'
        + (f' <strong class="warning">Warning: {html.escape(warning)}.</strong>' if warning else "")
        + "</p>"
        if stopped
        else ""
    )
    return (
        why
        + img(
            learning_curves_figure(history, sizes, chance_level(manifest)),
            "learning curves: loss and accuracy per epoch, with the chance level",
        )
        + note
        + table("history", ["epoch", *keys], rows)
    )


def confusion_tables(evaluation: dict, labels: list[str], mode: str) -> str:
    parts = []
    for key, name in (("float", "float"), ("quantized", mode)):
        header = ["true \\ predicted", *labels]
        rows = [
            (
                {"data-label": label},
                [("label", label), *(("count", str(v)) for v in evaluation[key]["confusion"][i])],
            )
            for i, label in enumerate(labels)
        ]
        parts.append(f"<h3>{html.escape(name)}</h3>" + table(f"confusion-{key}", header, rows))
    return (
        "<details><summary>The confusion matrices as numbers (rows: true class)</summary>"
        + "".join(parts)
        + "</details>"
    )


def misclassified_section(
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    probabilities: np.ndarray | None,
    labels: list[str],
    mode: str,
    unavailable: str | None,
) -> str:
    if x_test is None or probabilities is None:
        return (
            f"<p>Not shown: the test split is not available ({html.escape(unavailable or '')}).</p>"
        )
    indices, wrong = misclassified(probabilities, y_test)
    if not wrong:
        return f"<p>The {mode} model gets all {count(len(y_test))} test examples right.</p>"
    shown = (
        f"All {wrong}" if len(indices) == wrong else f"The {len(indices)} most confident of {wrong}"
    )
    rows = []
    for index in indices:
        predicted = int(probabilities[index].argmax())
        rows.append(
            (
                {"data-index": int(index)},
                [
                    ("index", str(index)),
                    ("true", labels[int(y_test[index])]),
                    ("predicted", labels[predicted]),
                    ("confidence", f"{probabilities[index, predicted]:.3f}"),
                ],
            )
        )
    return (
        f"<p>{shown} test examples the {html.escape(mode)} model gets wrong "
        f"(out of {count(len(y_test))}), most confident mistakes first.</p>"
        + img(
            misclassified_figure(x_test, y_test, probabilities, indices, labels),
            f"misclassified test examples ({len(indices)} shown)",
        )
        + "<details><summary>The same as a table</summary>"
        + table("misclassified", ["test index", "true", "predicted", "confidence"], rows)
        + "</details>"
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; }
#gate-banner { border: 2px solid #b00020; background: #fdecee; padding: 0.6em 1em; }
#gate-banner.forced { border-color: #b36b00; background: #fff4e0; }
.warning { color: #b36b00; }
"""


def allowed_drop(evaluation: dict) -> float:
    """The quantization gate's allowance as applied (two test examples at least), or the
    configured one for manifests from before it."""
    for check in evaluation.get("gate", {}).get("checks", []):
        if check.get("name") == "quantization":
            return float(check["allowed_points"])
    return float(evaluation.get("max_accuracy_drop_points", 0))


def gate_summary(gate: dict) -> str:
    if gate.get("passed"):
        return "passed: " + "; ".join(str(c.get("message", c.get("name"))) for c in gate["checks"])
    return "FAILED" + (", kept with FORCE=1" if gate.get("forced") else "") + " (see above)"


def gate_banner(manifest: dict) -> str:
    """A banner at the top when the model failed its gate: what failed and what changes it."""
    gate = manifest.get("evaluation", {}).get("gate") or {}
    if gate.get("passed", True):
        return ""
    failed = [c for c in gate.get("checks", []) if not c.get("passed")]
    trained = "epochs_trained" in manifest.get("model", {})
    fraction = manifest.get("dataset", {}).get("split", {}).get("test_fraction")
    tries = what_to_try(gate, trained, fraction)
    forced = gate.get("forced")
    heading = (
        "This model failed its gate and was kept with FORCE=1: it is published only with FORCE=1."
        if forced
        else "This model failed its gate: make train (or convert) exited 3, and make publish "
        "refuses it."
    )
    return (
        f'<div id="gate-banner" class="{"forced" if forced else "refused"}"><strong>'
        + html.escape(heading)
        + "</strong><ul>"
        + "".join(f"<li>{html.escape(str(c.get('message', c.get('name'))))}</li>" for c in failed)
        + "</ul>What changes this:<ul>"
        + "".join(f"<li>{html.escape(option)}</li>" for option in tries)
        + "</ul></div>"
    )


def augmentation_text(model: dict) -> str:
    """'light: shifts 0.1, rotation 0.04 turn, zoom 0.1, contrast 0.2, flips' (manifest's)."""
    augmentation = model["augmentation"]
    factors = {
        "shifts": augmentation.get("translate"),
        "rotation": augmentation.get("rotate"),
        "zoom": augmentation.get("zoom"),
        "contrast": augmentation.get("contrast"),
    }
    shown = [f"{name} {value:g}" for name, value in factors.items() if value]
    shown += ["horizontal flips"] if augmentation.get("flip") else []
    return f"{augmentation.get('level')}" + (f": {', '.join(shown)}" if shown else "")


def backbone_text(backbone: dict) -> str:
    """'MobileNetV3Small, weights imagenet, seen at 224x224'."""
    weights = backbone.get("weights")
    if isinstance(weights, dict):
        weights = f"{weights.get('file')} (sha256 {str(weights.get('sha256'))[:12]}...)"
    size = "x".join(str(v) for v in backbone.get("input_size", []))
    return f"{backbone.get('application')}, weights {weights}, seen at {size}"


def render_html(
    manifest: dict,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    probabilities: np.ndarray | None = None,
    unavailable: str | None = None,
) -> str:
    """The whole page. Every accuracy is shown with its 95% Wilson interval and its n."""
    labels = [str(label) for label in manifest["labels"]]
    evaluation, sizes = manifest["evaluation"], manifest["sizes"]
    mode = manifest.get("quantization", {}).get("mode", "quantized")
    dataset = manifest.get("dataset", {})
    model = manifest.get("model", {})
    title = f"{manifest['name']} version {manifest['version']}"
    tensor = manifest.get("input", {})
    described = model.get("architecture") or f"converted from {model.get('source', '?')}"
    epochs = f", {model['epochs_trained']} epochs trained" if "epochs_trained" in model else ""
    facts = {
        "created": manifest.get("created_at", ""),
        "dataset": f"{dataset.get('name', '?')} ("
        + ", ".join(f"{k} {count(v)}" for k, v in dataset.get("sizes", {}).items())
        + ")",
        "model": f"{described}, {count(model.get('parameters', 0))} parameters{epochs}",
        "input": f"{tensor.get('shape')} {tensor.get('dtype')}, {tensor.get('color', 'grey')}",
        "quantization": f"{mode}, calibration size "
        f"{manifest.get('quantization', {}).get('calibration_size', 0)}",
        **({"augmentation": augmentation_text(model)} if "augmentation" in model else {}),
        **({"backbone": backbone_text(model["backbone"])} if "backbone" in model else {}),
        **({"notes": "; ".join(model["notes"])} if model.get("notes") else {}),
        **({"gate": gate_summary(evaluation["gate"])} if evaluation.get("gate") else {}),
    }
    comparison_rows = [
        (
            {"data-model": key},
            [
                ("model", name),
                *score_cells("", evaluation[key]),
                ("bytes", count(sizes[size_key])),
                ("share", f"{sizes[size_key] / sizes['float32_tflite_bytes']:.0%}"),
            ],
        )
        for key, name, size_key in (
            ("float", "float32", "float32_tflite_bytes"),
            ("quantized", mode, "tflite_bytes"),
        )
    ]
    per_class_rows = [
        (
            {"data-label": label},
            [
                ("label", label),
                *score_cells("float-", evaluation["float"]["per_class"][label]),
                *score_cells("quantized-", evaluation["quantized"]["per_class"][label]),
            ],
        )
        for label in labels
    ]
    per_class_header = ["class", "float", "95% CI", "n", mode, "95% CI", "n"]
    chance = chance_level(manifest)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        gate_banner(manifest),
        "<dl>"
        + "".join(f"<dt>{k}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts.items())
        + "</dl>",
        "<h2>Float and quantized: size and accuracy</h2>",
        f"<p>On the same held-out test split; 95% Wilson intervals. Accuracy drop "
        f"{evaluation.get('accuracy_drop_points', 0):.2f} points (allowed "
        f"{allowed_drop(evaluation):.2f}).</p>",
        table(
            "comparison",
            ["model", "accuracy", "95% CI", "n", "bytes", "of float32"],
            comparison_rows,
        ),
        img(
            comparison_figure(evaluation, sizes, mode, chance),
            "float vs quantized: bytes and accuracy, with the chance level",
        ),
        "<h2>Learning curves</h2>",
        history_section(manifest),
        "<h2>Confusion matrices</h2>",
        img(
            confusion_figure(evaluation["float"], evaluation["quantized"], labels, mode),
            "confusion matrices, float and quantized",
        ),
        confusion_tables(evaluation, labels, mode),
        "<h2>Accuracy per class</h2>",
        img(
            per_class_figure(
                evaluation["float"]["per_class"],
                evaluation["quantized"]["per_class"],
                mode,
                1 / len(labels),
            ),
            "per-class accuracy with 95% intervals",
        ),
        table("per-class", per_class_header, per_class_rows),
        "<h2>Misclassified test examples</h2>",
        misclassified_section(x_test, y_test, probabilities, labels, mode, unavailable),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}: training report</title><style>{STYLE}</style></head>"
        "<body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def check_predictions(manifest: dict, probabilities: np.ndarray, y_test: np.ndarray) -> None:
    """The examples must be the ones the manifest's numbers came from, or the grid would lie."""
    k = len(manifest["labels"])
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_test), probabilities.argmax(axis=1)), 1)
    if confusion.tolist() != manifest["evaluation"]["quantized"]["confusion"]:
        raise ValueError(
            f"the {len(y_test)} test examples given do not reproduce the manifest's quantized "
            "confusion matrix: not the split this model was evaluated on"
        )


def write_report(
    artifact_dir: Path,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    unavailable: str | None = None,
) -> Path:
    """artifact_dir/report.html from the artifact's manifest and model and its test split (x_test
    None: the page says `unavailable` instead of the grid of misclassified examples)."""
    artifact_dir = Path(artifact_dir)
    manifest = json.loads((artifact_dir / MANIFEST_FILE).read_text())
    probabilities = None
    if x_test is not None:
        # one batch, as the accuracy gate evaluated it
        probabilities = Predictor.from_file(str(artifact_dir / MODEL_FILE)).predict(x_test)
        check_predictions(manifest, probabilities, y_test)
    target = artifact_dir / REPORT_FILE
    target.write_text(
        render_html(manifest, x_test, y_test, probabilities, unavailable), encoding="utf-8"
    )
    return target


def remake_report(artifact_dir: Path) -> tuple[Path, str | None]:
    """`python -m training report`: the test split made again from the manifest; when it cannot
    be (a dataset not on this machine), the report without the misclassified grid and why."""
    from training.data import DatasetError, held_out_split

    manifest = json.loads((Path(artifact_dir) / MANIFEST_FILE).read_text())
    try:
        x_test, y_test = held_out_split(manifest)
    except DatasetError as exc:
        return write_report(artifact_dir, None, None, str(exc)), str(exc)
    return write_report(artifact_dir, x_test, y_test), None
