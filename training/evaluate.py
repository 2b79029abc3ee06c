"""Evaluation of the converted model through the function's own predictor (mlcore.predictor,
LiteRT), and the accuracy gate. No TensorFlow import here."""

from __future__ import annotations

import math

import numpy as np

from mlcore.predictor import Predictor
from training.config import ARCHITECTURES, AUGMENT_LEVELS, BACKBONES

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


def tflite_specs(model_content: bytes) -> tuple[dict, dict]:
    """The manifest's input and output tensor specs of a converted model."""
    predictor = Predictor.from_bytes(model_content)
    return predictor.input_spec, predictor.output_spec


def tflite_probabilities(model_content: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch of raw inputs, as the function computes them (one invoke)."""
    return Predictor.from_bytes(model_content).predict(x)


def accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def wilson_interval(correct: int, n: int, z: float = Z_95) -> list[float]:
    """95% confidence interval of a proportion (Wilson score interval): honest for small n
    and for accuracies near 1, where the normal approximation leaves [0, 1]."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 6), round(min(1.0, centre + half), 6)]


def proportion(correct: int, n: int) -> dict:
    """An accuracy as every report shows it: the fraction, its 95% interval and its n."""
    return {
        "accuracy": round(correct / n, 6) if n else 0.0,
        "ci95": wilson_interval(correct, n),
        "n": int(n),
    }


def describe_accuracy(score: dict) -> str:
    """'94.20% (91.8% to 95.9%, n=500)': an accuracy is never shown without its interval."""
    low, high = score["ci95"]
    return f"{score['accuracy']:.2%} ({low:.1%} to {high:.1%}, n={score['n']})"


def scorecard(predicted: np.ndarray, y: np.ndarray, labels: list[str]) -> dict:
    """Accuracy with its interval, per class, and the confusion matrix (rows: true class,
    columns: predicted class, in the order of `labels`)."""
    predicted, y = np.asarray(predicted), np.asarray(y)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = {
        label: proportion(int(confusion[i, i]), int(confusion[i].sum()))
        for i, label in enumerate(labels)
    }
    return {
        **proportion(int(np.trace(confusion)), len(y)),
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def accuracy_drop_points(float_accuracy: float, quantized_accuracy: float) -> float:
    return round((float_accuracy - quantized_accuracy) * 100, 4)


# -- the gate: what a model must show before it may be published -------------------------------
# Each check is a dict the manifest records (evaluation.gate.checks): its name, whether it
# passed, the figures it compared and a sentence saying so.

ALLOWED_FLIPS = 2  # a drop of one or two test examples is within what the split can measure


def correct(score: dict) -> int:
    return round(score["accuracy"] * score["n"])


def chance_check(score: dict, y_test: np.ndarray, labels: list[str]) -> dict:
    """The served model's accuracy interval must lie above the share of the most common class
    in the test split: what always answering that class scores (chance, for a balanced set)."""
    counts = np.bincount(np.asarray(y_test), minlength=len(labels))
    majority = float(counts.max() / counts.sum())
    low = score["ci95"][0]
    passed = low > majority
    if counts.min() == counts.max():
        bar = f"chance, {majority:.1%} ({len(labels)} classes of {counts[0]} test images each)"
    else:
        most = labels[int(counts.argmax())]
        bar = f"{majority:.1%}, what always answering {most!r} (the most common class) scores"
    return {
        "name": "above_chance",
        "passed": bool(passed),
        "majority_share": round(majority, 6),
        "majority_label": labels[int(counts.argmax())],
        "ci95_low": low,
        "message": f"accuracy {describe_accuracy(score)} "
        + ("lies above " if passed else "does not lie above ")
        + bar,
    }


def min_accuracy_check(score: dict, min_accuracy: float) -> dict:
    """MIN_ACCURACY (percent): a stricter bar on the served model's accuracy."""
    passed = score["accuracy"] * 100 >= min_accuracy
    return {
        "name": "min_accuracy",
        "passed": bool(passed),
        "min_accuracy_percent": min_accuracy,
        "message": f"accuracy {score['accuracy']:.2%} is "
        + ("at least" if passed else "below")
        + f" MIN_ACCURACY={min_accuracy:g}%",
    }


def quantization_check(float_score: dict, quantized_score: dict, max_drop: float) -> dict:
    """The converted model may lose MAX_ACCURACY_DROP points against the float one on the same
    test split, or up to ALLOWED_FLIPS examples of it, whichever is more: on 75 examples one
    flipped prediction is 1.33 points, so a flat 1-point bar would refuse a good model for
    noise the split cannot resolve."""
    n = quantized_score["n"]
    lost = correct(float_score) - correct(quantized_score)
    drop = accuracy_drop_points(float_score["accuracy"], quantized_score["accuracy"])
    flips_points = round(ALLOWED_FLIPS * 100 / n, 4) if n else 100.0
    passed = drop <= max_drop or lost <= ALLOWED_FLIPS
    return {
        "name": "quantization",
        "passed": bool(passed),
        "drop_points": drop,
        "examples_lost": int(lost),
        "allowed_points": max(max_drop, flips_points),
        "message": (
            f"the converted model's accuracy is {drop:.2f} points ({lost} of {n} examples) "
            f"below the float model's; allowed: {max(max_drop, flips_points):.2f} points, the "
            f"larger of MAX_ACCURACY_DROP={max_drop:g} and {ALLOWED_FLIPS} examples of {n}"
        ),
    }


def verdict(checks: list[dict], force: bool) -> dict:
    """The manifest's evaluation.gate: every check, whether all passed, and whether a failed
    model was kept anyway (FORCE=1)."""
    passed = all(check["passed"] for check in checks)
    return {"passed": passed, "forced": bool(force and not passed), "checks": checks}


def what_to_try(gate: dict, trained: bool, test_fraction: float | None) -> list[str]:
    """The options that change a failed gate's outcome, for the message and the report."""
    failed = {check["name"] for check in gate["checks"] if not check["passed"]}
    options = []
    if failed & {"above_chance", "min_accuracy"}:
        if trained:
            options += [
                "more images per class (hundreds per class are typical)",
                "EPOCHS=... (--epochs) and MAX_MINUTES=... (--max-minutes), if training stopped "
                "on the maximum or the budget",
                f"AUGMENT=... (--augment: {', '.join(AUGMENT_LEVELS)}; add flip where a "
                "mirrored image is the same class): more variety from the same images",
                f"another ARCH=... (--architecture: {', '.join(ARCHITECTURES)}); a pretrained "
                f"backbone ({', '.join(BACKBONES)}) with WEIGHTS=imagenet starts from features "
                "learnt on ImageNet, the usual remedy for few images",
            ]
        else:
            options += [
                "the model itself: was it trained on these classes, in this order?",
                "INPUT_RANGE or MEAN/STD: the scaling the model was trained with",
            ]
    if "quantization" in failed:
        fraction = f" (now {test_fraction:g})" if test_fraction else ""
        options += [
            "MAX_ACCURACY_DROP=... (--max-accuracy-drop, points)",
            f"a larger TEST_FRACTION{fraction} (--test-fraction) or a TEST_DATASET: a larger "
            "test split measures the drop more finely",
            "QUANTIZE=float16 or dynamic (--quantize): no calibration, less loss",
        ]
    return [*options, "FORCE=1 (--force) keeps the model anyway; the manifest records it"]


def refusal(gate: dict, trained: bool, test_fraction: float | None) -> str:
    """What `make train` and `make convert` print when the gate refuses a model."""
    failed = [check["message"] for check in gate["checks"] if not check["passed"]]
    tries = what_to_try(gate, trained, test_fraction)
    return (
        "the model failed its gate, so it will not be published: "
        + "; ".join(failed)
        + ".\nWhat changes this:\n"
        + "\n".join(f"  - {option}" for option in tries)
    )


def describe_stop(stopped: dict) -> str:
    """'stopped at epoch 42 of 100: converged (...)' from the manifest's model.stopped."""
    reasons = {
        "converged": f"converged (no better validation loss for {stopped.get('patience')} "
        f"epochs; the weights of epoch {stopped.get('best_epoch')} kept)",
        "budget": f"the time budget, MAX_MINUTES={stopped.get('max_minutes'):g} (the weights "
        f"of epoch {stopped.get('best_epoch')} kept)",
        "max_epochs": f"the maximum, EPOCHS={stopped.get('max_epochs')} (the weights of epoch "
        f"{stopped.get('best_epoch')} kept)",
    }
    limit = f"of at most {stopped.get('max_epochs')}"
    phases = stopped.get("phases")
    if phases:  # a pretrained backbone: the head first, then fine-tuning (training.model.phases)
        ran = {phase.get("name"): phase.get("epochs") for phase in phases}
        limit = f"({ran.get('head')} with the backbone frozen, " + (
            f"{ran['fine_tune']} fine-tuning; at most {stopped.get('max_epochs')} each)"
            if "fine_tune" in ran
            else "no fine-tuning: the budget was spent)"
        )
    return f"stopped after epoch {stopped.get('epochs')} {limit}: " + reasons.get(
        stopped.get("reason"), str(stopped.get("reason"))
    )


def still_improving_warning(stopped: dict) -> str | None:
    if not stopped.get("still_improving"):
        return None
    option = "MAX_MINUTES" if stopped.get("reason") == "budget" else "EPOCHS"
    return (
        "the validation accuracy was still rising when training stopped: a larger "
        f"{option} may give a better model"
    )
