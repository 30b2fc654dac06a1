"""`rendezvous model import`: every family a user brings (tests/families.py) imports and then
scores exactly as a bare ONNX Runtime session; every refusal says why and writes nothing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from rendezvous.cli import main
from rendezvous.model import load_manifest, load_model
from tests.families import BUILDERS, Family

Runner = Callable[..., tuple[int, str]]
Families = dict[str, Family]
EXPECTED_METRICS = {"binary": ("auc", "accuracy"), "multiclass": ("accuracy", "log_loss"),
                    "regression": ("rmse", "mae", "r2")}


@pytest.fixture(scope="module")
def families(tmp_path_factory: pytest.TempPathFactory) -> Families:
    """Each family built once, in its own directory."""
    return {name: build(tmp_path_factory.mktemp(name), seed=7)
            for name, build in BUILDERS.items()}


@pytest.fixture
def run_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    """``rendezvous --models-dir tmp/models model import ARGS``: (exit code, output)."""
    # --models-dir sets the variable for the process: let monkeypatch put it back.
    monkeypatch.setenv("RENDEZVOUS_MODELS_DIR", str(tmp_path / "models"))

    def run(*args: object) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["--models-dir", str(tmp_path / "models"), "model", "import",
                   *map(str, args)])
        assert "Traceback" not in result.output
        return result.exit_code, result.output
    yield run


def written(models: Path) -> list[Path]:
    """Every file and directory under ``models`` (none when it does not exist)."""
    return sorted(models.rglob("*")) if models.exists() else []


@pytest.mark.parametrize("name", list(BUILDERS))
def test_family_imports_and_scores_as_a_bare_session(
        name: str, families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families[name]
    code, output = run_import("mine", family.onnx, "--data", family.data, "--label",
                              family.label)
    assert code == 0, output
    lines = output.splitlines()
    for key in ("model", "data", "inputs", "outputs", "task", "features", "metrics",
                "reference", "written"):
        assert any(line.startswith(f"{key}: ") for line in lines), (key, output)
    assert f"task: {family.task} (auto: " in output
    directory = tmp_path / "models" / "mine" / "1"
    assert f"written: {directory} " in output

    umask = os.umask(0)
    os.umask(umask)
    assert directory.stat().st_mode & 0o777 == 0o777 & ~umask  # as mkdir makes it, not 0700
    assert sorted(p.name for p in directory.parent.iterdir()) == ["1"]  # no staging left

    manifest = load_manifest(directory)
    assert (manifest.task, manifest.classes) == (family.task, family.classes)
    assert manifest.feature_names == family.features
    assert manifest.origin == "imported" and manifest.estimator
    assert manifest.metrics is not None and manifest.metrics.rows == len(family.rows())
    set_metrics = {k for k in ("auc", "accuracy", "log_loss", "rmse", "mae", "r2")
                   if getattr(manifest.metrics, k) is not None}
    assert set_metrics == set(EXPECTED_METRICS[family.task])
    assert set(manifest.reference.features) == set(family.features)
    assert (manifest.reference.score_quantiles is None) == (family.task == "multiclass")

    model = load_model(directory)
    rows = [[row[f] for f in family.features] for row in family.rows()]
    prediction = model.predict(rows)
    bare = family.bare_scores()
    np.testing.assert_allclose(prediction.scores, bare, rtol=1e-6)
    fresh = family.draw(50, 99, False)  # rows the import never saw
    np.testing.assert_allclose(model.predict([[r[f] for f in family.features]
                                              for r in family.rows(fresh)]).scores,
                               family.bare_scores(fresh), rtol=1e-6)
    if family.task != "regression":
        assert prediction.labels is not None and set(prediction.labels) <= set(family.classes)


def test_parquet_data_imports_the_same(families: Families, run_import: Runner,
                                       tmp_path: Path) -> None:
    family = families["lightgbm_multiclass"]
    path = family.variant(tmp_path / "colours.parquet")
    assert run_import("colours", family.onnx, "--data", path, "--label", family.label)[0] == 0
    manifest = load_manifest(tmp_path / "models" / "colours" / "1")
    assert manifest.classes == ["blue", "green", "red"] and manifest.metrics is not None
    model = load_model(tmp_path / "models" / "colours" / "1")
    rows = [[row[f] for f in family.features] for row in family.rows()]
    np.testing.assert_allclose(model.predict(rows).scores, family.bare_scores(), rtol=1e-6)


def test_default_exports_keep_their_zipmap(families: Families) -> None:
    """The families are what the exporters give by default, not simplified graphs."""
    for name in ("sklearn_pipeline_binary", "lightgbm_multiclass"):
        outputs = {o.name: o.type for o in families[name].session().get_outputs()}
        assert outputs[families[name].score_output].startswith("seq(map("), outputs
    inputs = families["sklearn_pipeline_binary"].session().get_inputs()
    assert [(i.name, i.type) for i in inputs][-1] == ("city", "tensor(string)")


def test_a_string_feature_keeps_its_categories_and_shares(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_pipeline_binary"]
    assert run_import("churn", family.onnx, "--data", family.data)[0] == 0
    manifest = load_manifest(tmp_path / "models" / "churn" / "1")
    city = next(f for f in manifest.features if f.name == "city")
    assert city.dtype == "string" and city.categories == ["lille", "lyon", "nice", "paris"]
    shares = manifest.reference.features["city"].categories
    assert shares is not None and set(shares) == set(city.categories)
    assert abs(sum(shares.values()) - 1) < 1e-4 and manifest.metrics is None


def test_a_string_reference_keeps_the_top_categories_and_the_rest() -> None:
    from rendezvous.model.manifest import OTHER_CATEGORY
    from rendezvous.model.reference import TOP_CATEGORIES, category_distribution

    values = np.array([f"c{i % 60:02d}" for i in range(600)] + ["c07"] * 30, dtype=object)
    shares = category_distribution(values).categories
    assert shares is not None and len(shares) == TOP_CATEGORIES + 1
    assert next(iter(shares)) == "c07" and shares[OTHER_CATEGORY] == pytest.approx(100 / 630,
                                                                                 rel=1e-5)
    assert sum(shares.values()) == pytest.approx(1, abs=1e-5)


def test_versions_count_up_and_force_replaces(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_regressor"]
    features = ",".join(family.features)
    assert run_import("prices", family.onnx, "--data", family.data, "--features", features)[0] == 0
    assert run_import("prices", family.onnx, "--data", family.data, "--label", "price")[0] == 0
    assert sorted(p.name for p in (tmp_path / "models" / "prices").iterdir()) == ["1", "2"]
    assert load_manifest(tmp_path / "models" / "prices" / "1").metrics is None
    code, output = run_import("prices", family.onnx, "--data", family.data, "--version", "1",
                              "--label", family.label, "--force")
    assert code == 0, output
    assert load_manifest(tmp_path / "models" / "prices" / "1").metrics is not None
    assert sorted(p.name for p in (tmp_path / "models" / "prices").iterdir()) == ["1", "2"]


def test_features_pick_the_matrix_columns(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["onnx_helper_graph"]
    path = family.variant(tmp_path / "with-id.csv", id=np.arange(len(family.columns["x1"])))
    code, output = run_import("risk", family.onnx, "--data", path, "--label", "event",
                              "--features", "x1,x2,x3", "--output", "value=risk")
    assert code == 0, output
    assert load_manifest(tmp_path / "models" / "risk" / "1").feature_names == ["x1", "x2", "x3"]


# --- refusals: one line, exit code 1, nothing written ------------------------------------


def refused(run_import: Runner, tmp_path: Path, *args: object) -> str:
    code, output = run_import(*args)
    assert code == 1, output
    # what it found up to the refusal, one line each, then the refusal itself
    assert output.strip().splitlines()[-1].startswith("Error: "), output
    assert written(tmp_path / "models") == [], written(tmp_path / "models")
    return output


def test_refuses_a_file_that_is_not_onnx(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.onnx"
    bogus.write_text("these are my notes, not a model\n")
    output = refused(run_import, tmp_path, "x", bogus, "--data", families["onnx_helper_graph"].data)
    assert f"{bogus} is not an ONNX model" in output


def test_refuses_a_graph_onnx_runtime_cannot_load(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NoSuchOperator", ["x"], ["y"])], "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    output = refused(run_import, tmp_path, "x", path, "--data", families["onnx_helper_graph"].data)
    assert f"ONNX Runtime cannot load {path}" in output and "NoSuchOperator" in output


def test_refuses_a_missing_column(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_pipeline_binary"]
    path = family.variant(tmp_path / "no-city.csv", city=None)
    output = refused(run_import, tmp_path, "churn", family.onnx, "--data", path)
    assert "input city tensor(string) [N, 1]: no-city.csv has no column 'city'" in output


def test_refuses_text_for_a_numeric_input(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_pipeline_binary"]
    path = family.variant(tmp_path / "words.csv",
                          age=np.array(["old"] * len(family.columns["age"]), dtype=object))
    output = refused(run_import, tmp_path, "churn", family.onnx, "--data", path)
    assert ("column 'age' holds text (e.g. 'old'), but input age tensor(float) [N, 1] takes "
            "numbers") in output


def test_refuses_numbers_for_a_string_input(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_pipeline_binary"]
    path = family.variant(tmp_path / "codes.parquet", city=np.arange(len(family.columns["city"])))
    output = refused(run_import, tmp_path, "churn", family.onnx, "--data", path)
    assert "column 'city' holds int64 values, but input city tensor(string) [N, 1] takes strings" \
        in output


def test_refuses_rows_that_cannot_fill_the_input(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["onnx_helper_graph"]
    path = family.variant(tmp_path / "extra.csv", x4=family.columns["x1"])
    output = refused(run_import, tmp_path, "risk", family.onnx, "--data", path, "--label",
                     "event")
    assert "input x tensor(float) [N, 3] takes 3 features per row, but extra.csv gives 4" in output
    assert "x1, x2, x3, x4" in output and "pass --features" in output


def test_refuses_a_fixed_batch_of_one(families: Families, run_import: Runner,
                                      tmp_path: Path) -> None:
    """What torch.onnx exports without dynamic_axes: x [1, 3]."""
    import onnx

    model = onnx.load(families["onnx_helper_graph"].onnx)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    path = tmp_path / "batch1.onnx"
    path.write_bytes(model.SerializeToString())
    output = refused(run_import, tmp_path, "risk", path, "--data",
                     families["onnx_helper_graph"].data, "--label", "event")
    assert "input x tensor(float) [1, 3] takes a fixed 1 rows per call" in output
    assert "dynamic first dimension" in output


def test_refuses_an_empty_value_and_a_bad_output_option(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["onnx_helper_graph"]
    x2 = family.columns["x2"].astype(np.float64)
    x2[10] = np.nan
    output = refused(run_import, tmp_path, "risk", family.onnx, "--data",
                     family.variant(tmp_path / "gap.parquet", x2=x2), "--label", "event")
    assert "column 'x2' has no usable value at row 11 (empty, NaN or infinite)" in output
    output = refused(run_import, tmp_path, "risk", family.onnx, "--data", family.data,
                     "--label", "event", "--output", "score=risk")
    assert "--output 'score=risk': expected ROLE=NAME with ROLE one of probabilities, label, " \
        "value" in output


def test_refuses_a_task_it_cannot_tell(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["onnx_helper_graph"]
    output = refused(run_import, tmp_path, "risk", family.onnx, "--data", family.data,
                     "--features", "x1,x2,x3")
    assert "cannot tell the task: one value per row, all in [0, 1]" in output
    assert "--task binary" in output and "--task regression" in output
    # ...and told, it imports
    assert run_import("risk", family.onnx, "--data", family.data, "--features", "x1,x2,x3",
                      "--task", "binary")[0] == 0


def test_refuses_an_existing_version_without_force(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["sklearn_regressor"]
    assert run_import("prices", family.onnx, "--data", family.data, "--version", "3",
                      "--label", family.label)[0] == 0
    before = {p: p.read_bytes() for p in written(tmp_path / "models") if p.is_file()}
    code, output = run_import("prices", families["onnx_helper_graph"].onnx, "--data",
                              families["onnx_helper_graph"].data, "--version", "3")
    assert code == 1
    assert f"{tmp_path / 'models' / 'prices' / '3'} exists already" in output
    assert "--force" in output
    assert {p: p.read_bytes() for p in written(tmp_path / "models") if p.is_file()} == before


def _graph(tmp_path: Path, name: str, nodes: list[Any], width: int,
           initializers: dict[str, np.ndarray]) -> Path:
    """A graph ``x`` float [N, width] -> ``value`` float, made with onnx.helper."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_refuses_a_graph_that_scores_nan_and_leaves_no_staging(
        run_import: Runner, tmp_path: Path) -> None:
    from onnx import helper

    path = _graph(tmp_path, "sqrt", [helper.make_node("MatMul", ["x", "W"], ["s"]),
                                     helper.make_node("Sqrt", ["s"], ["value"])],
                  2, {"W": np.ones((2, 1), dtype=np.float32)})
    data = tmp_path / "signed.csv"
    pacsv.write_csv(pa.table({"a": [4.0, -9.0, 1.0], "b": [5.0, 1.0, 2.0], "y": [3.0, 0, 1]}),
                    data)
    output = refused(run_import, tmp_path, "root", path, "--data", data, "--label", "y",
                     "--task", "regression")
    assert "sqrt.onnx scores 1 rows of signed.csv as NaN or infinite (first: row 2)" in output


def test_refuses_a_graph_that_gives_no_result_per_row(
        run_import: Runner, tmp_path: Path) -> None:
    from onnx import helper

    path = _graph(tmp_path, "total", [helper.make_node("ReduceSum", ["x"], ["value"])], 2, {})
    data = tmp_path / "rows.csv"
    pacsv.write_csv(pa.table({"a": [4.0, 9.0, 1.0], "b": [5.0, 1.0, 2.0]}), data)
    output = refused(run_import, tmp_path, "total", path, "--data", data)
    assert "output 'value' gives 1 results for the 3 rows of rows.csv" in output


def test_refuses_a_task_the_outputs_cannot_be(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["lightgbm_multiclass"]
    output = refused(run_import, tmp_path, "c", family.onnx, "--data", family.data, "--label",
                     family.label, "--task", "binary")
    assert "--task binary: output 'probabilities' holds the probabilities of 3 classes" in output


def test_refuses_a_label_with_values_that_are_no_class(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    family = families["lightgbm_multiclass"]
    labels = family.columns["colour"].copy()
    labels[5] = "purple"
    path = family.variant(tmp_path / "purple.parquet", colour=labels)
    output = refused(run_import, tmp_path, "c", family.onnx, "--data", path, "--label", "colour")
    assert "--label 'colour' holds values that are not classes of the model: purple" in output


def test_refuses_a_data_file_it_cannot_read(
        families: Families, run_import: Runner, tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text("[]")
    output = refused(run_import, tmp_path, "x", families["onnx_helper_graph"].onnx, "--data", path)
    assert "not a data file this reads" in output


def test_refuses_the_bundled_models_directory(families: Families,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from rendezvous.settings import PACKAGE_DIR

    monkeypatch.setenv("RENDEZVOUS_MODELS_DIR", str(PACKAGE_DIR / "models"))
    family = families["onnx_helper_graph"]
    result = CliRunner().invoke(main, ["model", "import", "x", str(family.onnx), "--data",
                                       str(family.data)])
    assert result.exit_code == 1 and "shipped inside the package" in result.output
    assert not (PACKAGE_DIR / "models" / "x").exists()


def test_help_names_every_option() -> None:
    shown = CliRunner().invoke(main, ["model", "import", "--help"]).output
    for word in ("NAME MODEL.onnx", "--data", "--label", "--version", "--task", "--features",
                 "--output ROLE=NAME", "--force", "--models-dir", "CSV", "Parquet", "ZipMap"):
        assert word in shown, word
