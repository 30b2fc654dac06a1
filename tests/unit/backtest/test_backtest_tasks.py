"""The backtest per task (binary with a string feature, multiclass, regression): gates that
pass and fail, the report's plots per task, summary.json without NaN, the CLI's exit code.

The models are made here: ``onnx.helper`` graphs (multiclass softmax, regression) and a
scikit-learn ``Pipeline`` with a string column exported by skl2onnx's defaults (ZipMap on);
each gets a manifest as ``model import`` writes one (task, classes, typed features, the
training reference). The archive is written by the decoy's own writer, without a broker.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from confluent_kafka import Message
from onnx import TensorProto, helper, numpy_helper

from rendezvous.backtest import EXIT_FAILED, EXIT_PASSED, BacktestConfig, backtest, stats
from rendezvous.backtest.report import CONFUSION, HISTOGRAMS, QQ_PLOT, REPORT, SUMMARY
from rendezvous.backtest.runner import DEFAULT_MIN_LABEL_AGREEMENT
from rendezvous.cli.backtest import backtest as backtest_command
from rendezvous.decoy.batches import to_batches
from rendezvous.decoy.writer import ArchiveWriter
from rendezvous.messages import Candidate, Decision, Feedback, Label, encode
from rendezvous.model import Model, load_model
from rendezvous.model.manifest import (
    MODEL_FILE,
    OTHER_CATEGORY,
    QUANTILE_LEVELS,
    Distribution,
    Feature,
    Manifest,
    QuantileTable,
    Reference,
    Task,
    write_manifest,
)
from rendezvous.model.quantiles import Quantiles
from rendezvous.model.signature import ports, signature_of

T0 = 1_712_000_000_000
TOPICS = {"p.input": "input", "p.decisions": "decisions", "p.feedback": "feedback"}
CLASSES = ["setosa", "versicolor", "virginica"]
N = 300


# -- models made here -------------------------------------------------------------------


def _graph(weights: np.ndarray, bias: np.ndarray, output: str, softmax: bool) -> bytes:
    """``output = [softmax](input @ weights + bias)``: one float input ``[N, F]``."""
    f, k = weights.shape
    nodes = [helper.make_node("MatMul", ["input", "W"], ["z"]),
             helper.make_node("Add", ["z", "B"], ["logits" if softmax else output])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], [output], axis=1))
    graph = helper.make_graph(
        nodes, "hand-made", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, f])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None, k])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "W"),
                     numpy_helper.from_array(bias.astype(np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _distribution(column: np.ndarray, feature: Feature) -> Distribution:
    if feature.is_string:
        values, counts = np.unique(column.astype(str), return_counts=True)
        return Distribution(categories={str(v): float(c) / len(column)
                                        for v, c in zip(values, counts, strict=True)})
    data = column.astype(np.float64)
    return Distribution(quantiles=np.quantile(data, QUANTILE_LEVELS).tolist(),
                        mean=float(data.mean()), std=float(data.std()))


def save_model(models_dir: Path, name: str, version: str, onnx_bytes: bytes,
               features: list[Feature], task: Task, classes: list[Label],
               train: np.ndarray) -> Model:
    """``models_dir/name/version`` with a manifest whose reference is ``train``'s."""
    directory = models_dir / name / version
    directory.mkdir(parents=True)
    (directory / MODEL_FILE).write_bytes(onnx_bytes)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [f.name for f in features]
    signature = signature_of(ports(session.get_inputs()), ports(session.get_outputs()), names)

    def manifest(scores: np.ndarray | None) -> Manifest:
        table = None
        if scores is not None:
            function = Quantiles.from_scores(scores)
            table = QuantileTable(function.levels.tolist(), function.values.tolist())
        score = (Distribution() if scores is None else
                 Distribution(quantiles=np.quantile(scores, QUANTILE_LEVELS).tolist()))
        return Manifest(
            name=name, version=version, sha256=hashlib.sha256(onnx_bytes).hexdigest(),
            features=features, output="made in a test", metrics=None,
            reference=Reference(levels=list(QUANTILE_LEVELS), rows=len(train),
                                features={f.name: _distribution(train[:, i], f)
                                          for i, f in enumerate(features)},
                                score=score, score_quantiles=table),
            task=task, classes=classes, signature=signature, origin="imported")

    write_manifest(manifest(None), directory)
    scores = load_model(directory).predict(train).scores
    write_manifest(manifest(scores), directory)
    return load_model(directory)


MULTICLASS_W = np.array([[3.0, -1.0, -2.0], [-1.0, 3.0, -2.0]])


def multiclass(models_dir: Path, version: str, train: np.ndarray,
               columns: list[int] | None = None, noise: float = 0.0) -> Model:
    """Softmax over three string classes; ``columns`` permutes the classes' weights (a
    candidate that swaps classes), ``noise`` perturbs the weights a little."""
    weights = MULTICLASS_W[:, columns or [0, 1, 2]]
    weights = weights + np.random.default_rng(7).normal(0, noise, weights.shape)
    return save_model(models_dir, "flowers", version,
                      _graph(weights, np.zeros(3), "class_probs", softmax=True),
                      [Feature("a"), Feature("b")], "multiclass", list(CLASSES), train)


def regression(models_dir: Path, version: str, train: np.ndarray, sign: float = 1.0,
               noise: float = 0.0) -> Model:
    weights = sign * np.array([[2.0], [-1.0]])
    weights = weights + np.random.default_rng(8).normal(0, noise, weights.shape)
    return save_model(models_dir, "price", version,
                      _graph(weights, np.array([10.0]), "y_hat", softmax=False),
                      [Feature("a"), Feature("b")], "regression", [], train)


def string_pipeline(models_dir: Path, version: str) -> tuple[Model, np.ndarray]:
    """A scikit-learn Pipeline (one-hot on the string column ``color``, the number ``x``
    passed through, a logistic regression) exported by skl2onnx with its defaults (one
    input per column, ZipMap on); its training rows (objects)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(3)
    train = np.empty((400, 2), dtype=object)  # no pandas: columns by position
    train[:, 0] = rng.choice(["red", "green", "blue"], size=400, p=[0.5, 0.3, 0.2])
    train[:, 1] = rng.normal(0, 1, 400).astype(np.float32).astype(float)
    y = ((train[:, 0] == "red") ^ (train[:, 1] > 0.5)).astype(int)
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([("color", OneHotEncoder(handle_unknown="ignore"), [0])],
                                      remainder="passthrough")),
        ("classify", LogisticRegression())]).fit(train, y)
    onnx_model = to_onnx(pipeline, initial_types=[("color", StringTensorType([None, 1])),
                                                  ("x", FloatTensorType([None, 1]))])
    model = save_model(models_dir, "churn", version, onnx_model.SerializeToString(),
                       [Feature("color", "string", ["blue", "green", "red"]), Feature("x")],
                       "binary", [0, 1], train)
    return model, train


# -- an archive written by the decoy's writer --------------------------------------------


def _records(topic: str, values: list[bytes]) -> list[Message]:
    return [Message(topic=topic, partition=0, offset=i, key=None, value=v,
                    timestamp=(1, T0 + i)) for i, v in enumerate(values)]


def write_archive(root: Path, inputs: list[bytes], decisions: list[bytes],
                  feedback: Sequence[bytes] = ()) -> Path:
    writer = ArchiveWriter(root)
    records = (_records("p.input", inputs) + _records("p.decisions", decisions)
               + _records("p.feedback", list(feedback)))
    for group, batch in to_batches(records, TOPICS, T0 + 10_000).items():
        writer.add(group, batch)
    writer.roll()
    return root


def events(rows: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "features": {n: (v if isinstance(v, str) else float(v))
                                         for n, v in zip(names, row, strict=True)}}
            for i, row in enumerate(rows.tolist())]


def recorded(production: Model, rows: np.ndarray, with_labels: bool = True) -> list[bytes]:
    """Decisions as serve records them: ``production`` answered each row."""
    prediction = production.predict(rows)
    labels: list[Label | None] = [None] * len(rows)
    if with_labels and prediction.labels is not None:
        labels = list(prediction.labels)
    return [encode(Decision(
        id=f"r{i}", status="ok", chosen=production.name, deadline_ms=50.0, decided_ms=1.0,
        ts=0.0, candidates=[Candidate(production.name, production.version, float(score), 3.0,
                                      True, label=label)]))
        for i, (score, label) in enumerate(zip(prediction.scores.tolist(), labels,
                                               strict=True))]


def read_summary(report: Path) -> dict[str, Any]:
    """summary.json, refusing NaN and infinities."""
    return json.loads((report / SUMMARY).read_text(), parse_constant=pytest.fail)


def plots(report: Path) -> set[str]:
    found = {p.name for p in report.glob("*.png")}
    for name in found:
        assert (report / name).read_bytes()[:4] == b"\x89PNG"
    return found


@pytest.fixture
def features2() -> np.ndarray:
    return np.random.default_rng(1).normal(0, 1, (N, 2)).astype(np.float32)


# -- multiclass ---------------------------------------------------------------------------


def test_multiclass_gates_on_label_agreement(tmp_path: Path, features2: np.ndarray) -> None:
    models = tmp_path / "models"
    train = np.random.default_rng(2).normal(0, 1, (600, 2)).astype(np.float32)
    production = multiclass(models, "1", train)
    close = multiclass(models, "2", train, noise=0.5)
    flipped = multiclass(models, "3", train, columns=[1, 0, 2])  # setosa <-> versicolor
    truth = production.predict(features2).labels
    assert truth is not None and set(truth) == set(CLASSES)
    archive = write_archive(tmp_path / "archive",
                            [json.dumps(e).encode() for e in events(features2, ["a", "b"])],
                            recorded(production, features2),
                            [encode(Feedback(f"r{i}", label)) for i, label in enumerate(truth)])

    results = {}
    for model in (production, close, flipped):
        config = BacktestConfig(archive=archive, report=tmp_path / f"report{model.version}",
                                models_dir=models)
        results[model.version] = result = backtest(model, config)
        summary = read_summary(config.report)
        assert summary["task"] == "multiclass" and summary["classes"] == CLASSES
        assert summary["gates"] == ["label_agreement", "input_psi"]
        assert summary["agreement"] is None and summary["quantile_distance"] is None
        assert summary["min_label_agreement"] == DEFAULT_MIN_LABEL_AGREEMENT
        assert summary["labels"]["labelled_rows"] == N
        assert plots(config.report) == {CONFUSION, HISTOGRAMS}
        assert "confusion.png" in (config.report / REPORT).read_text()
        quality = summary["quality"]
        assert quality["labelled_rows"] == N
        assert set(quality["candidate"]) == {"rows", "accuracy", "log_loss"}
        assert quality["production"]["accuracy"] == 1.0  # the labels are production's own
        assert quality["candidate"]["accuracy"] == pytest.approx(summary["label_agreement"])
        assert result.exit_status == (EXIT_PASSED if result.summary["passed"] else EXIT_FAILED)

    same = results["1"].summary
    assert same["passed"] and same["label_agreement"] == 1.0
    counts = same["labels"]["confusion"]["counts"]
    assert same["labels"]["confusion"]["labels"] == CLASSES
    assert sum(counts[i][i] for i in range(3)) == N  # all on the diagonal
    assert results["2"].summary["passed"], results["2"].summary["failures"]
    assert 0.8 <= results["2"].summary["label_agreement"] < 1.0

    swapped = results["3"]
    assert swapped.exit_status == EXIT_FAILED
    assert swapped.summary["label_agreement"] < 0.5
    assert swapped.summary["failures"] == [
        f"label agreement {swapped.summary['label_agreement']:.4f} < min "
        f"{DEFAULT_MIN_LABEL_AGREEMENT} (share of requests where the candidate's class is "
        "production's)"]
    counts = swapped.summary["labels"]["confusion"]["counts"]
    assert counts[0][0] == 0 and counts[0][1] > 0 and counts[1][0] > 0  # setosa <-> versicolor
    assert swapped.summary["quality"]["candidate"]["accuracy"] < 0.5


def test_multiclass_threshold_is_a_setting(tmp_path: Path, features2: np.ndarray) -> None:
    models = tmp_path / "models"
    production = multiclass(models, "1", features2)
    close = multiclass(models, "2", features2, noise=0.5)
    archive = write_archive(tmp_path / "archive",
                            [json.dumps(e).encode() for e in events(features2, ["a", "b"])],
                            recorded(production, features2))
    agreement = backtest(close, BacktestConfig(archive=archive, report=tmp_path / "r")
                         ).summary["label_agreement"]
    assert agreement < 1.0
    loose = backtest(close, BacktestConfig(archive=archive, report=tmp_path / "loose",
                                           min_label_agreement=agreement - 0.001))
    tight = backtest(close, BacktestConfig(archive=archive, report=tmp_path / "tight",
                                           min_label_agreement=agreement + 0.001))
    assert (loose.exit_status, tight.exit_status) == (EXIT_PASSED, EXIT_FAILED)
    assert tight.summary["failures"][0].startswith("label agreement")
    assert loose.summary["quality"] is None  # no feedback archived
    assert read_summary(tmp_path / "loose")["quality"] is None


def test_multiclass_without_recorded_classes_fails_closed(tmp_path: Path,
                                                          features2: np.ndarray) -> None:
    models = tmp_path / "models"
    production = multiclass(models, "1", features2)
    archive = write_archive(tmp_path / "archive",
                            [json.dumps(e).encode() for e in events(features2, ["a", "b"])],
                            recorded(production, features2, with_labels=False))
    result = backtest(production, BacktestConfig(archive=archive, report=tmp_path / "r"))
    assert result.exit_status == EXIT_FAILED
    assert result.summary["labels"]["unlabelled_rows"] == N
    assert result.summary["failures"][0].startswith("no production class recorded for any")
    assert read_summary(tmp_path / "r")["label_agreement"] is None


def test_cli_exit_status_follows_the_multiclass_gate(tmp_path: Path, features2: np.ndarray,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    production = multiclass(models, "1", features2)
    flipped = multiclass(models, "2", features2, columns=[2, 1, 0])
    archive = write_archive(tmp_path / "archive",
                            [json.dumps(e).encode() for e in events(features2, ["a", "b"])],
                            recorded(production, features2))
    monkeypatch.setenv("RENDEZVOUS_MODELS_DIR", str(models))
    monkeypatch.chdir(tmp_path)
    runs = {}
    for model in (production, flipped):
        runs[model.version] = CliRunner().invoke(backtest_command, [
            "--archive", str(archive), "--model", str(model.path), "--no-record",
            "--report", str(tmp_path / f"cli{model.version}")])
    assert runs["1"].exit_code == 0, runs["1"].output
    assert "(multiclass)" in runs["1"].output and "label agreement 1.0000" in runs["1"].output
    assert runs["2"].exit_code == 3, runs["2"].output
    assert "label agreement" in runs["2"].output and "FAILED" in runs["2"].output
    strict = CliRunner().invoke(backtest_command, [
        "--archive", str(archive), "--model", "flowers/1", "--no-record",
        "--min-label-agreement", "1.01", "--report", str(tmp_path / "strict")])
    assert strict.exit_code == 3, strict.output


# -- regression ---------------------------------------------------------------------------


def test_regression_gates_on_rank_agreement(tmp_path: Path, features2: np.ndarray) -> None:
    models = tmp_path / "models"
    train = np.random.default_rng(4).normal(0, 1, (600, 2)).astype(np.float32)
    production = regression(models, "1", train)
    close = regression(models, "2", train, noise=0.05)
    reversed_ = regression(models, "3", train, sign=-1.0)
    values = production.predict(features2).scores
    truth = values + np.random.default_rng(5).normal(0, 0.5, len(values))
    archive = write_archive(tmp_path / "archive",
                            [json.dumps(e).encode() for e in events(features2, ["a", "b"])],
                            recorded(production, features2),
                            [encode(Feedback(f"r{i}", float(t))) for i, t in enumerate(truth)])
    results = {}
    for model in (production, close, reversed_):
        report = tmp_path / f"report{model.version}"
        results[model.version] = result = backtest(model, BacktestConfig(
            archive=archive, report=report, models_dir=models, against="price"))
        summary = read_summary(report)
        assert summary["task"] == "regression" and summary["classes"] == []
        assert summary["gates"] == ["agreement", "quantile_distance", "input_psi"]
        assert summary["label_agreement"] is None and summary["labels"] is None
        assert summary["psi"] is not None
        assert summary["references"] == {"price:1": "its manifest"}
        assert plots(report) == {QQ_PLOT, HISTOGRAMS}
        assert set(summary["quality"]["candidate"]) == {"rows", "rmse", "mae", "r2"}
        assert result.exit_status == (EXIT_PASSED if summary["passed"] else EXIT_FAILED)
    same, near, bad = (results[v].summary for v in "123")
    assert same["passed"] and same["agreement"] == pytest.approx(1.0)
    assert same["quantile_distance"] == pytest.approx(0.0, abs=0.02)
    assert same["psi"] == pytest.approx(0.0, abs=1e-9)
    expected = float(np.sqrt(np.mean((values - truth) ** 2)))
    assert same["quality"]["candidate"]["rmse"] == pytest.approx(expected, rel=1e-6)
    assert same["quality"]["production"]["rmse"] == pytest.approx(expected, rel=1e-6)
    assert near["passed"], near["failures"]
    assert not bad["passed"] and bad["agreement"] == pytest.approx(-1.0)
    assert bad["failures"][0].startswith("agreement -1.0000 < min 0.7")
    assert bad["quality"]["candidate"]["rmse"] > 2 * expected


# -- binary with a string feature ----------------------------------------------------------


def test_binary_with_a_string_feature_scores_and_checks_category_drift(
        tmp_path: Path) -> None:
    models = tmp_path / "models"
    production, train = string_pipeline(models, "1")
    rows = train[:N]
    names = ["color", "x"]
    inputs = [json.dumps(e).encode() for e in events(rows, names)]
    wrong_type = b'{"id":"w","features":{"color":3.0,"x":1.0}}'
    archive = write_archive(tmp_path / "archive", [*inputs, wrong_type],
                            recorded(production, rows),
                            [encode(Feedback(f"r{i}", int(s >= 0.5))) for i, s in
                             enumerate(production.predict(rows).scores.tolist())])
    result = backtest(production, BacktestConfig(archive=archive, report=tmp_path / "r",
                                                 models_dir=models))
    summary = read_summary(tmp_path / "r")
    assert result.exit_status == EXIT_PASSED, summary["failures"]
    assert summary["task"] == "binary" and summary["classes"] == [0, 1]
    assert summary["rows"] == N and summary["invalid_inputs"] == 1
    assert summary["agreement"] == pytest.approx(1.0) and summary["label_agreement"] == 1.0
    assert set(summary["feature_psi"]) == {"color", "x"}
    assert summary["feature_psi"]["color"] < 0.05 and summary["unseen_categories"] == {
        "color": 0}
    assert plots(tmp_path / "r") == {QQ_PLOT, HISTOGRAMS}
    quality = summary["quality"]["candidate"]
    assert set(quality) == {"rows", "accuracy", "auc"} and quality["accuracy"] == 1.0

    # the same traffic, but blue and a colour the model never saw: the input gate fails
    shifted = rows.copy()
    shifted[: N // 2, 0] = "blue"
    shifted[N // 2: N // 2 + 30, 0] = "purple"
    archive = write_archive(tmp_path / "shifted",
                            [json.dumps(e).encode() for e in events(shifted, names)],
                            recorded(production, shifted))
    drifted = backtest(production, BacktestConfig(archive=archive, report=tmp_path / "s",
                                                  models_dir=models))
    assert drifted.exit_status == EXIT_FAILED
    assert drifted.summary["unseen_categories"] == {"color": 30}
    assert drifted.summary["input_psi_feature"] == "color"
    assert drifted.summary["failures"] == [
        f"input PSI {drifted.summary['input_psi']:.4f} > max 0.2 (feature color)"]


# -- the statistics -------------------------------------------------------------------------


def test_label_agreement_and_confusion() -> None:
    candidate: list[Label] = ["a", "b", "b", 2, "c"]
    production: list[Label | None] = ["a", "a", "b", 2.0, None]  # type: ignore[list-item]
    assert stats.label_agreement(candidate, production) == 0.75
    assert math.isnan(stats.label_agreement(["a"], [None]))
    labels, counts = stats.confusion(candidate, production, ["c", "b", "a"])
    assert labels == ["c", "b", "a", "2"]
    assert counts == [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]
    with pytest.raises(ValueError):
        stats.label_agreement(["a"], [])


def test_category_psi_bins_like_the_monitor() -> None:
    shares = {"red": 0.5, "green": 0.3, OTHER_CATEGORY: 0.2}
    same = ["red"] * 50 + ["green"] * 30 + ["blue"] * 20  # blue: known, not listed
    assert stats.category_psi(same, shares, ["red", "green", "blue"]) == (0.0, 0)
    psi, unseen = stats.category_psi(["red"] * 50 + ["pink"] * 50, shares, ["blue"])
    floor = 1e-4
    expected = ((0.5 - 0.5) * 0 + (floor - 0.3) * math.log(floor / 0.3)
                + (floor - 0.2) * math.log(floor / 0.2) + (0.5 - floor) * math.log(0.5 / floor))
    assert unseen == 50 and psi == pytest.approx(expected)
    # no share for the rest given: what the listed categories leave
    assert stats.category_psi(["x"] * 3 + ["y"], {"x": 0.75}, ["y"]) == (0.0, 0)
    assert math.isnan(stats.category_psi([], shares)[0])


def test_value_psi_bins_on_the_expected_deciles() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(100, 20, 5000)
    assert stats.value_psi(base, base) == pytest.approx(0.0)
    assert stats.value_psi(base, rng.normal(100, 20, 5000)) < 0.02
    assert stats.value_psi(base, base + 40) > 1.0
    assert math.isnan(stats.value_psi(base, np.zeros(0)))


def test_quality_per_task() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    binary = stats.quality("binary", [0, 0, 1, 1.0], scores, [0, 1, 0, 1], classes=[0, 1])
    assert binary == {"rows": 4, "accuracy": 0.5, "auc": 0.75}  # sklearn's roc_auc_score
    assert stats.quality("binary", [None, None], scores[:2], [0, 1], classes=[0, 1]) == {
        "rows": 0, "accuracy": pytest.approx(math.nan, nan_ok=True),
        "auc": pytest.approx(math.nan, nan_ok=True)}

    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    multi = stats.quality("multiclass", ["a", "b", "a"], probabilities.max(axis=1),
                          ["a", "b", "c"], probabilities, ["a", "b", "c"])
    assert multi["accuracy"] == pytest.approx(2 / 3)
    assert multi["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.3))
                                              / 3)

    values = np.array([1.0, 2.0, 4.0])
    reg = stats.quality("regression", [1.0, 3, "n/a"], values)
    assert reg["rows"] == 2 and reg["mae"] == 0.5 and reg["rmse"] == pytest.approx(
        math.sqrt(0.5))
    assert reg["r2"] == pytest.approx(1 - 1.0 / 2.0)
