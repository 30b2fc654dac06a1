"""Model families a user brings, built for the "your own model" tests: each builder makes
its data with a numpy RNG (no download), fits a small model (well under a second), exports
it with the library's **default** options (ZipMap left where the exporter puts it) and
writes the data, label column included, as CSV (``Family.variant`` rewrites it, e.g. as
Parquet). ``builder(tmp, seed=...)`` makes ``tmp`` when it does not exist.

- :func:`sklearn_pipeline_binary`: a scikit-learn ``Pipeline`` (``ColumnTransformer``:
  ``StandardScaler`` on three numbers, ``OneHotEncoder`` on the string column ``city``;
  ``LogisticRegression``), skl2onnx ``to_onnx`` with one input per column; binary, ZipMap.
- :func:`lightgbm_multiclass`: ``LGBMClassifier`` on four numbers, three string classes,
  onnxmltools ``convert_lightgbm``; one matrix input, ZipMap with string keys; Parquet.
- :func:`sklearn_regressor`: ``GradientBoostingRegressor`` (one integer column among the
  numbers), skl2onnx; one matrix input ``X``, output ``variable`` [N, 1].
- :func:`onnx_helper_graph`: ``risk = Sigmoid(x @ W + b)`` built with ``onnx.helper``: input
  ``x`` float [N, 3], output ``risk`` [N, 1]; labels 0/1 drawn from it.

Each returns a :class:`Family`: the paths, the label column, the features in the model's
order, the task and classes expected, the data as written, a way to draw more rows (shifted
in one feature, for drift tests), and :meth:`Family.bare_scores`: the score per the
runtime's contract computed with a bare ``onnxruntime.InferenceSession``, the tests' oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa

Columns = dict[str, np.ndarray]
CITIES = ["lille", "lyon", "nice", "paris"]
COLOURS = ["red", "green", "blue"]


@dataclass(frozen=True)
class Family:
    """One built family: the ONNX file, its data, and what importing it should find."""

    name: str
    onnx: Path
    data: Path
    label: str
    features: list[str]
    """Feature names in the model's order (the data's columns for them)."""
    task: str
    classes: list[Any]
    """Class labels as the model has them (binary: negative, positive); [] for regression."""
    columns: Columns
    """The data as written: every feature column and the label."""
    draw: Callable[[int, int, bool], Columns]
    """``draw(n, seed, shifted)``: n more rows of the features (no label), with
    :attr:`shifted` moved when ``shifted`` is true."""
    shifted: str
    """The feature ``draw(..., shifted=True)`` moves (a category's share for a string)."""
    score_output: str
    """The graph output the score is read from."""

    def rows(self, columns: Columns | None = None) -> list[dict[str, float | str]]:
        """The rows as events' ``features`` (numbers as float, strings as str)."""
        data = self.columns if columns is None else columns
        return [{f: (str(data[f][i]) if data[f].dtype.kind in "OUS" else float(data[f][i]))
                 for f in self.features} for i in range(len(data[self.features[0]]))]

    def session(self) -> ort.InferenceSession:
        """A plain session on one thread: a tree ensemble's sums then run in one order, as
        on a worker (more threads may add them in another, off by a float32 rounding)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        return ort.InferenceSession(str(self.onnx), options, providers=["CPUExecutionProvider"])

    def bare_scores(self, columns: Columns | None = None,
                    session: ort.InferenceSession | None = None) -> np.ndarray:
        """The score of each row as the runtime defines it (binary: P(positive class);
        multiclass: the top class's probability; regression: the value), from a bare
        ``InferenceSession`` fed the graph's own input types."""
        data = self.columns if columns is None else columns
        session = session or self.session()
        inputs = session.get_inputs()
        if len(inputs) == 1 and inputs[0].shape[1] != 1:
            feeds = {inputs[0].name: np.column_stack([data[f] for f in self.features])
                     .astype(np.float32)}
        else:
            feeds = {i.name: data[i.name].astype(
                object if i.type == "tensor(string)" else np.float32).reshape(-1, 1)
                for i in inputs}
        (out,) = session.run([self.score_output], feeds)
        if isinstance(out, list):  # ZipMap: one {class: p} per row
            table = np.array([[row[c] for c in self.classes] for row in out])
            return (table[:, 1] if self.task == "binary" else table.max(axis=1)).astype(float)
        return np.asarray(out, dtype=np.float64).reshape(-1)

    def variant(self, path: Path, **changes: np.ndarray | None) -> Path:
        """The family's data with columns replaced or added (an array) or dropped (None),
        written to ``path`` (CSV or Parquet by suffix)."""
        columns = {k: v for k, v in (self.columns | changes).items() if v is not None}
        return write_data(path, columns)


def write_data(path: Path, columns: Columns) -> Path:
    """Write ``columns`` as Parquet (``.parquet``) or CSV (any other suffix); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(v.tolist() if v.dtype == object else v)
                      for k, v in columns.items()})
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    return path


def _draw_customers(n: int, seed: int, shifted: bool = False) -> Columns:
    rng = np.random.default_rng(seed)
    shares = [0.05, 0.05, 0.1, 0.8] if shifted else [0.1, 0.2, 0.3, 0.4]
    return {"age": rng.normal(45, 12, n).round(1).astype(np.float32),
            "income": rng.lognormal(3.5, 0.4, n).round(2).astype(np.float32),
            "visits": rng.poisson(4, n).astype(np.float32),
            "city": np.array(rng.choice(CITIES, size=n, p=shares), dtype=object)}


def sklearn_pipeline_binary(tmp: Path, seed: int = 0, n: int = 600) -> Family:
    """Binary churn: Pipeline(ColumnTransformer(StandardScaler on age, income, visits;
    OneHotEncoder(handle_unknown="ignore") on city), LogisticRegression), one ONNX input
    per column (float [N, 1], string [N, 1]); outputs ``output_label`` and the ZipMap
    ``output_probability``."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    columns = _draw_customers(n, seed)
    rng = np.random.default_rng(seed + 1)
    logit = (0.06 * (columns["age"] - 45) - 0.3 * (columns["visits"] - 4)
             + np.where(columns["city"] == "paris", 1.0, -0.5))
    columns["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    numbers, names = ["age", "income", "visits"], ["age", "income", "visits", "city"]
    x = np.empty((n, 4), dtype=object)  # no pandas here: columns by position
    for i, name in enumerate(names):
        x[:, i] = columns[name]
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([("numbers", StandardScaler(), [0, 1, 2]),
                                       ("city", OneHotEncoder(handle_unknown="ignore"), [3])])),
        ("classify", LogisticRegression(max_iter=500)),
    ]).fit(x, columns["churned"])
    onx = to_onnx(pipeline, initial_types=[(f, FloatTensorType([None, 1])) for f in numbers]
                  + [("city", StringTensorType([None, 1]))])
    tmp.mkdir(parents=True, exist_ok=True)
    onnx_path = tmp / "churn.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    return Family("sklearn_pipeline_binary", onnx_path, write_data(tmp / "churn.csv", columns),
                  "churned", names, "binary", [0, 1], columns, _draw_customers, "city",
                  "output_probability")


def _draw_flowers(n: int, seed: int, shifted: bool = False) -> Columns:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    if shifted:
        x[:, 0] += 3
    return {f"f{i}": x[:, i] for i in range(4)}


def lightgbm_multiclass(tmp: Path, seed: int = 0, n: int = 600) -> Family:
    """Three string classes (blue, green, red) from four numbers: LGBMClassifier, exported
    by onnxmltools' ``convert_lightgbm`` with its default ZipMap."""
    import lightgbm
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    columns = _draw_flowers(n, seed)
    x = np.column_stack(list(columns.values()))
    rng = np.random.default_rng(seed + 1)
    scores = x[:, :3] + np.array([0.0, 0.3, -0.2]) * x[:, 3:4] + rng.normal(0, 0.6, (n, 3))
    columns["colour"] = np.array(COLOURS, dtype=object)[scores.argmax(axis=1)]
    model = lightgbm.LGBMClassifier(n_estimators=30, num_leaves=8, min_child_samples=10,
                                    random_state=seed, verbose=-1).fit(x, columns["colour"])
    onx = convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, 4]))])
    tmp.mkdir(parents=True, exist_ok=True)
    onnx_path = tmp / "colours.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    return Family("lightgbm_multiclass", onnx_path, write_data(tmp / "colours.csv", columns),
                  "colour", list(_draw_flowers(1, 0)), "multiclass",
                  sorted(COLOURS), columns, _draw_flowers, "f0", "probabilities")


def _draw_houses(n: int, seed: int, shifted: bool = False) -> Columns:
    rng = np.random.default_rng(seed)
    return {"rooms": rng.integers(1, 7, n).astype(np.int64),
            "area": rng.normal(90 + (60 if shifted else 0), 25, n).round(1).astype(np.float32),
            "age": rng.uniform(0, 80, n).round(0).astype(np.float32),
            "distance": rng.exponential(5, n).round(2).astype(np.float32)}


def sklearn_regressor(tmp: Path, seed: int = 0, n: int = 600) -> Family:
    """A price in thousands from rooms (an integer column), area, age and distance:
    GradientBoostingRegressor, skl2onnx ``to_onnx`` (input ``X`` [N, 4], output
    ``variable`` [N, 1])."""
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingRegressor

    columns = _draw_houses(n, seed)
    x = np.column_stack(list(columns.values())).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    columns["price"] = (150 + 40 * x[:, 0] + 2.5 * x[:, 1] - 0.8 * x[:, 2] - 6 * x[:, 3]
                        + rng.normal(0, 15, n)).round(1)
    model = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=seed)
    model.fit(x, columns["price"])
    onx = to_onnx(model, x[:1])
    tmp.mkdir(parents=True, exist_ok=True)
    onnx_path = tmp / "prices.onnx"
    onnx_path.write_bytes(onx.SerializeToString())
    return Family("sklearn_regressor", onnx_path, write_data(tmp / "prices.csv", columns), "price",
                  list(_draw_houses(1, 0)), "regression", [], columns, _draw_houses, "area",
                  "variable")


def _draw_signals(n: int, seed: int, shifted: bool = False) -> Columns:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    if shifted:
        x[:, 1] += 3
    return {f"x{i + 1}": x[:, i] for i in range(3)}


def onnx_helper_graph(tmp: Path, seed: int = 0, n: int = 600) -> Family:
    """``risk = Sigmoid(x @ W + b)`` written with ``onnx.helper``: input ``x`` float [N, 3]
    (the data's columns x1, x2, x3), output ``risk`` float [N, 1]; label ``event`` 0/1
    drawn with probability ``risk``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[1.5], [-2.0], [0.7]], dtype=np.float32)
    bias = np.array([0.2], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["z0"]),
         helper.make_node("Add", ["z0", "b"], ["z"]),
         helper.make_node("Sigmoid", ["z"], ["risk"])],
        "risk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("risk", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="onnx.helper", producer_version=onnx.__version__)
    model.ir_version = 8  # what every ONNX Runtime since 1.14 reads
    onnx.checker.check_model(model)
    tmp.mkdir(parents=True, exist_ok=True)
    onnx_path = tmp / "risk.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    columns = _draw_signals(n, seed)
    x = np.column_stack(list(columns.values()))
    risk = 1 / (1 + np.exp(-(x @ weights[:, 0] + bias[0])))
    columns["event"] = (np.random.default_rng(seed + 1).random(n) < risk).astype(np.int64)
    return Family("onnx_helper_graph", onnx_path, write_data(tmp / "risk.csv", columns), "event",
                  list(_draw_signals(1, 0)), "binary", [0, 1], columns, _draw_signals, "x2",
                  "risk")


ALL: list[Callable[..., Family]] = [sklearn_pipeline_binary, lightgbm_multiclass,
                                    sklearn_regressor, onnx_helper_graph]
"""Every family's builder: ``builder(tmp_path, seed=...)``."""
BUILDERS: dict[str, Callable[..., Family]] = {f.__name__: f for f in ALL}
"""The builders by name."""
