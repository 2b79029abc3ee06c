"""report.html: made from an artifact alone (the committed int8 fixture model, a manifest whose
numbers come from that model's real answers), one file, valid PNGs, the manifest's numbers, and
exactly the test examples the quantized model gets wrong."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import FIXTURE_DIR, ROOT
from training import report
from training.data import SAMPLE_SHA256, split_record
from training.evaluate import scorecard, tflite_specs
from training.manifest import build_manifest, dumps

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VERSION = 1764300000


class Page(HTMLParser):
    """The parts of report.html a reader looks at: images, and tables as rows of cells."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[dict] = []
        self.tables: dict[str, list[tuple[dict, list[list[str]]]]] = {}
        self.text: list[str] = []
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self._table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self._table is not None:
            self._row = (attrs, [])
        elif tag == "td" and self._row is not None:
            self._cell = [attrs["class"], ""]
            self._row[1].append(self._cell)

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            if self._row[1]:  # not the header
                self._table.append(self._row)
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell[1] += data

    def rows(self, table_id: str) -> dict[str, dict[str, str]]:
        """{the row's data-* value: {cell class: text}}"""
        return {next(iter(attrs.values())): dict(cells) for attrs, cells in self.tables[table_id]}

    def cells(self, table_id: str, cell_class: str) -> list[list[str]]:
        return [[t for c, t in cells if c == cell_class] for _, cells in self.tables[table_id]]


def make_manifest(content: bytes, x, y, labels) -> dict:
    """A manifest as the training job writes it, its quantized numbers from the model's real
    answers on (x, y); the 'float' model differs on a few examples, so the two cannot be mixed."""
    from mlcore.predictor import Predictor

    predicted = Predictor.from_bytes(content).predict(x).argmax(axis=1)
    float_predicted = predicted.copy()
    float_predicted[:40:4] = y[:40:4]  # right where the int8 model may be wrong
    float_predicted[1:40:4] = (y[1:40:4] + 1) % len(labels)  # and wrong on a few more
    input_spec, output_spec = tflite_specs(content)
    return build_manifest(
        name="mnist",
        version=VERSION,
        created_at=VERSION,
        dataset={
            "name": "mnist-sample",
            "sha256": SAMPLE_SHA256,
            "sizes": {"train": 4000, "validation": 500, "test": len(y)},
            "seed": 42,
            "split": split_record(0.1, 0.1, 42, None),
        },
        model={"architecture": "mlp", "epochs_trained": 3, "parameters": 101770},
        input_spec={**input_spec, "value_range": [0.0, 255.0]},
        output_spec=output_spec,
        labels=labels,
        quantization={"mode": "int8", "calibration_size": 500},
        evaluation={
            "split": "test",
            "units": "fraction",
            "float": scorecard(float_predicted, y, labels),
            "quantized": scorecard(predicted, y, labels),
            "accuracy_drop_points": 0.4,
            "max_accuracy_drop_points": 1.0,
        },
        training={
            "history": {
                "loss": [1.04, 0.43, 0.33],
                "accuracy": [0.713, 0.881, 0.912],
                "val_loss": [0.53, 0.41, 0.37],
                "val_accuracy": [0.858, 0.884, 0.892],
            }
        },
        sizes={"float32_tflite_bytes": 410196, "tflite_bytes": len(content)},
        model_content=content,
    )


@pytest.fixture(scope="module")
def digits():
    with np.load(FIXTURE_DIR / "digits.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, digits) -> Path:
    """artifacts/mnist/VERSION/ with the committed int8 model and its manifest."""
    folder = tmp_path_factory.mktemp("artifacts") / "mnist" / str(VERSION)
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE_DIR / "model.tflite", folder / "model.tflite")
    content = (folder / "model.tflite").read_bytes()
    labels = [str(i) for i in range(10)]
    (folder / "manifest.json").write_bytes(
        dumps(make_manifest(content, digits["x"], digits["y"], labels))
    )
    return folder


@pytest.fixture(scope="module")
def written(artifact, digits):
    path = report.write_report(artifact, digits["x"], digits["y"])
    manifest = json.loads((artifact / "manifest.json").read_text())
    return path, manifest, Page(path.read_text(encoding="utf-8"))


def decoded_pngs(page: Page) -> list[tuple[bytes, Image.Image]]:
    out = []
    for image in page.images:
        prefix = "data:image/png;base64,"
        assert image["src"].startswith(prefix), image["src"][:40]
        content = base64.b64decode(image["src"][len(prefix) :], validate=True)
        out.append((content, Image.open(io.BytesIO(content))))
    return out


def test_report_is_one_file_beside_the_model_that_opens_without_network(written, artifact):
    path, _, page = written
    assert path == artifact / "report.html"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    for external in ("http:", "https:", 'src="//', "<script", "<link", "@import", "url("):
        assert external not in text, external
    assert len(page.images) == 5  # comparison, learning curves, confusion, per class, grid


def test_every_figure_is_a_valid_png_of_sensible_size(written):
    _, _, page = written
    for content, image in decoded_pngs(page):
        assert content.startswith(PNG_MAGIC)
        image.load()  # decodes the whole image, not just the header
        assert image.format == "PNG"
        width, height = image.size
        assert 300 <= width <= 4000 and 200 <= height <= 4000, image.size
        assert len(np.unique(np.asarray(image.convert("L")))) > 10  # drawn on, not blank
    assert all(image["alt"] for image in page.images)


def test_accuracy_sizes_and_intervals_equal_the_manifests(written):
    _, manifest, page = written
    rows = page.rows("comparison")
    evaluation, sizes = manifest["evaluation"], manifest["sizes"]
    for key, size in (("float", "float32_tflite_bytes"), ("quantized", "tflite_bytes")):
        score = evaluation[key]
        assert rows[key]["accuracy"] == f"{score['accuracy']:.2%}"
        assert rows[key]["ci95"] == f"{score['ci95'][0]:.1%} to {score['ci95'][1]:.1%}"
        assert rows[key]["n"] == "500"
        assert rows[key]["bytes"] == f"{sizes[size]:,}"
    assert rows["quantized"]["model"] == "int8"
    assert rows["float"]["accuracy"] != rows["quantized"]["accuracy"]  # not the same row twice


def test_per_class_accuracy_with_intervals_equals_the_manifests(written):
    _, manifest, page = written
    rows = page.rows("per-class")
    assert list(rows) == manifest["labels"]
    for label, cells in rows.items():
        for key in ("float", "quantized"):
            score = manifest["evaluation"][key]["per_class"][label]
            assert cells[f"{key}-accuracy"] == f"{score['accuracy']:.2%}"
            assert cells[f"{key}-ci95"] == f"{score['ci95'][0]:.1%} to {score['ci95'][1]:.1%}"
            assert cells[f"{key}-n"] == str(score["n"])


def test_confusion_tables_equal_the_manifests(written):
    _, manifest, page = written
    for key in ("float", "quantized"):
        shown = [[int(v) for v in row] for row in page.cells(f"confusion-{key}", "count")]
        assert shown == manifest["evaluation"][key]["confusion"]
    assert [row[0] for row in page.cells("confusion-float", "label")] == manifest["labels"]


def test_learning_curves_table_equals_the_history_with_intervals(written):
    _, manifest, page = written
    rows = page.rows("history")
    history = manifest["training"]["history"]
    assert list(rows) == ["1", "2", "3"]
    for epoch, cells in rows.items():
        i = int(epoch) - 1
        assert cells["loss"] == f"{history['loss'][i]:.4f}"
        assert cells["val_accuracy"].startswith(f"{history['val_accuracy'][i]:.2%} (")
        assert " to " in cells["accuracy"] and " to " in cells["val_accuracy"]


def test_grid_shows_exactly_the_examples_the_quantized_model_gets_wrong(written, digits):
    _, manifest, page = written
    # the fixture's own record of what this int8 model answers, made when it was trained
    wrong = set(np.flatnonzero(digits["expected"] != digits["y"]).tolist())
    assert 0 < len(wrong) <= report.MAX_MISCLASSIFIED
    rows = page.rows("misclassified")
    assert {int(i) for i in rows} == wrong
    labels = manifest["labels"]
    for index, cells in rows.items():
        assert cells["true"] == labels[digits["y"][int(index)]]
        assert cells["predicted"] == labels[digits["expected"][int(index)]]
    assert f"All {len(wrong)} test examples the int8 model gets wrong" in "".join(page.text)
    grid = decoded_pngs(page)[-1][1]
    assert grid.size[1] >= 100 * (len(wrong) // report.GRID_COLUMNS)  # one row per 8 tiles


def test_misclassified_keeps_the_most_confident_mistakes_up_to_the_cap():
    probabilities = np.array(
        [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.99, 0.01], [0.45, 0.55]]
    )
    y = np.array([0, 0, 0, 1, 1, 0])  # wrong: 1 (0.8), 2 (0.6), 4 (0.99), 5 (0.55)
    indices, wrong = report.misclassified(probabilities, y, cap=3)
    assert wrong == 4
    assert indices.tolist() == [4, 1, 2]


def test_examples_that_are_not_the_evaluated_split_are_refused(artifact, digits):
    shuffled = np.random.default_rng(0).permutation(len(digits["y"]))
    with pytest.raises(ValueError, match="not the split this model was evaluated on"):
        report.write_report(artifact, digits["x"][shuffled], digits["y"])


def test_without_the_test_split_the_page_says_why(tmp_path, artifact):
    folder = tmp_path / "artifact"
    shutil.copytree(artifact, folder)
    path = report.write_report(folder, None, None, "mnist: not on this machine")
    page = Page(path.read_text(encoding="utf-8"))
    assert "misclassified" not in page.tables
    assert "not on this machine" in "".join(page.text)
    assert len(page.images) == 4


def synthetic_manifest(labels: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(labels), 20 * len(labels))
    right = rng.random(len(y)) < 0.8
    predicted = np.where(right, y, rng.integers(0, len(labels), len(y)))
    return {
        "name": "many",
        "version": 1,
        "labels": labels,
        "quantization": {"mode": "int8"},
        "evaluation": {
            "float": scorecard(predicted, y, labels),
            "quantized": scorecard(predicted, y, labels),
        },
        "sizes": {"float32_tflite_bytes": 4_000_000, "tflite_bytes": 1_000_000},
    }


@pytest.mark.parametrize("classes,annotated", [(10, True), (100, False)])
def test_confusion_matrices_stay_legible_for_10_and_100_classes(classes, annotated):
    labels = [f"class_{i:03d}" for i in range(classes)]
    manifest = synthetic_manifest(labels)
    evaluation = manifest["evaluation"]
    figure = report.confusion_figure(evaluation["float"], evaluation["quantized"], labels, "int8")
    matrix_axes = figure.axes[:2]
    nonzero = int(np.count_nonzero(evaluation["quantized"]["confusion"]))
    assert len(matrix_axes[1].texts) == (nonzero if annotated else 0)
    assert len(matrix_axes[0].get_xticks()) <= report.TICK_CLASSES  # tick labels do not overlap
    width, height = Image.open(io.BytesIO(report.png(figure))).size
    assert 800 <= width <= 4000 and 400 <= height <= 4000


def test_a_100_class_report_without_history_or_test_split(tmp_path):
    labels = [f"class_{i:03d}" for i in range(100)]
    page = Page(report.render_html(synthetic_manifest(labels), unavailable="none given"))
    assert len(page.rows("per-class")) == 100
    assert "No training history" in "".join(page.text)
    for _, image in decoded_pngs(page):
        assert max(image.size) <= 4000


@pytest.mark.parametrize("shape", [(28, 28), (28, 28, 1), (32, 32, 3)])
def test_grid_draws_grey_and_rgb_images(shape):
    """Grey images drawn in grey levels (128 stays mid-grey), RGB ones in their colours."""
    colour = shape[-1] == 3
    x = np.full((3, *shape), 128, dtype=np.uint8)
    if colour:
        x[...] = (255, 0, 0)  # pure red
    y = np.array([0, 1, 2])
    probabilities = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    indices, wrong = report.misclassified(probabilities, y)
    assert indices.tolist() == [0, 1] and wrong == 2
    figure = report.misclassified_figure(x, y, probabilities, indices, ["cat", "dog", "eel"])
    assert sum(bool(axes.images) for axes in figure.axes) == 2
    pixels = np.asarray(Image.open(io.BytesIO(report.png(figure))).convert("RGB")).reshape(-1, 3)
    pixels = pixels.astype(int)
    if colour:
        shown = (pixels[:, 0] > 240) & (pixels[:, 1] < 15) & (pixels[:, 2] < 15)
    else:
        shown = np.all(np.abs(pixels - 128) <= 2, axis=1)
    assert shown.sum() > 2 * 80 * 80  # two tiles of about 100x100 pixels each


def test_images_of_other_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        report.as_image(np.zeros((8, 8, 4)))


def test_summary_prints_the_report_path(written, artifact):
    from training.pipeline import TrainResult, summary

    _, manifest, _ = written
    text = summary(TrainResult(artifact, manifest, 1.0, None))
    assert f"report {artifact / 'report.html'}" in text
    assert "n=500" in text
    assert "gate: none recorded" in text  # a manifest from before the gate: neither verdict


def test_cli_remakes_the_report_from_the_artifact_alone_without_tensorflow(tmp_path, artifact):
    """`python -m training report`: the newest artifact of the name, the test split remade
    from its manifest (the bundled sample), and TensorFlow never imported."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(artifact, artifacts / "mnist" / str(VERSION))
    (artifacts / "mnist" / str(VERSION) / "report.html").unlink(missing_ok=True)
    script = (
        "import sys; from training.cli import main; code = main(sys.argv[1:]); "
        "assert 'tensorflow' not in sys.modules, 'imported tensorflow'; sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "report", "--artifacts", str(artifacts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    path = artifacts / "mnist" / str(VERSION) / "report.html"
    assert done.stdout.strip() == f"report {path}"
    page = Page(path.read_text(encoding="utf-8"))
    with np.load(FIXTURE_DIR / "digits.npz") as digits:
        mistakes = int((digits["expected"] != digits["y"]).sum())  # the fixture model's own
    assert len(page.rows("misclassified")) == mistakes and len(page.images) == 5


def test_cli_report_without_an_artifact_says_so(tmp_path, capsys):
    from training.cli import main

    assert main(["report", "--artifacts", str(tmp_path)]) == 2
    assert "no trained artifact" in capsys.readouterr().err


def chance_lines(axes) -> list[float]:
    """The chance marks on a plot: dotted lines at one constant value."""
    return [
        float(line.get_ydata()[0])
        if len(set(line.get_ydata())) == 1
        else float(line.get_xdata()[0])
        for line in axes.lines
        if line.get_linestyle() == ":"
    ]


def test_the_accuracy_plots_mark_the_chance_level():
    history = {"accuracy": [0.3, 0.5], "val_accuracy": [0.25, 0.45], "loss": [1.5, 1.2]}
    figure = report.learning_curves_figure(history, {"train": 600, "validation": 75}, 0.2)
    loss_axes, accuracy_axes = figure.axes[:2]
    assert chance_lines(accuracy_axes) == [0.2] and chance_lines(loss_axes) == []
    labels = [f"c{i}" for i in range(5)]
    manifest = synthetic_manifest(labels)
    evaluation = manifest["evaluation"]
    sizes = manifest["sizes"]
    comparison = report.comparison_figure(evaluation, sizes, "int8", 0.2)
    assert chance_lines(comparison.axes[1]) == [0.2]
    assert comparison.axes[1].get_xlim()[0] <= 0.2  # the mark is inside the plot
    per_class = report.per_class_figure(
        evaluation["float"]["per_class"], evaluation["quantized"]["per_class"], "int8", 0.2
    )
    assert chance_lines(per_class.axes[0]) == [0.2]


def test_a_failed_gate_puts_a_banner_with_what_to_try_on_top(written):
    from training import evaluate

    _, manifest, _ = written
    assert 'id="gate-banner"' not in report.render_html(manifest)  # no gate recorded: none
    labels = manifest["labels"]
    quantized = manifest["evaluation"]["quantized"]
    y = np.repeat(np.arange(10), 50)
    failed = [evaluate.chance_check(quantized | {"ci95": [0.05, 0.15]}, y, labels)]
    for forced, heading in ((False, "make publish refuses it"), (True, "kept with FORCE=1")):
        gate = evaluate.verdict(failed, force=forced)
        page = report.render_html(
            manifest | {"evaluation": manifest["evaluation"] | {"gate": gate}}
        )
        banner = page[page.index('<div id="gate-banner"') :].split("</div>")[0]
        assert heading in banner and "does not lie above chance, 10.0%" in banner
        assert "EPOCHS" in banner and "FORCE=1" in banner
        assert page.index('id="gate-banner"') < page.index("<h2>")  # on top


def test_the_report_says_why_training_stopped_and_warns_while_still_improving(written):
    _, manifest, _ = written
    stopped = {"reason": "budget", "epochs": 3, "best_epoch": 3, "max_epochs": 100,
               "patience": 10, "max_minutes": 0.5, "still_improving": True}  # fmt: skip
    model = manifest["model"] | {"stopped": stopped}
    page = report.render_html(manifest | {"model": model})
    assert "Training stopped after epoch 3 of at most 100: the time budget, MAX_MINUTES=0.5" in page
    assert "Warning: the validation accuracy was still rising" in page
    assert "a larger MAX_MINUTES may give a better model" in page


def test_the_page_says_how_the_model_was_made_augmentation_and_backbone():
    from training.report import augmentation_text, backbone_text

    light = {"level": "light", "flip": True, "translate": 0.1, "rotate": 0.04, "zoom": 0.1,
             "contrast": 0.2}  # fmt: skip
    assert augmentation_text({"augmentation": light}) == (
        "light: shifts 0.1, rotation 0.04, zoom 0.1, contrast 0.2, horizontal flips"
    )
    assert augmentation_text({"augmentation": {"level": "none", "flip": False}}) == "none"
    pretrained = {"application": "MobileNetV3Small", "input_size": [224, 224]}
    assert backbone_text({**pretrained, "weights": "imagenet"}) == (
        "MobileNetV3Small, weights imagenet, seen at 224x224"
    )
    assert "m.weights.h5 (sha256 abababababab...)" in backbone_text(
        {**pretrained, "weights": {"file": "m.weights.h5", "sha256": "ab" * 32}}
    )
