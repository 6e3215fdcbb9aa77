"""The self-contained HTML run report and its metrics JSON (SPEC X4)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.report import figures as F
from hydraquant.report.html import (
    BacktestSection,
    ModelSection,
    ReportError,
    RunReport,
    metrics_payload,
    write_metrics_json,
    write_report,
)
from hydraquant.validation.metrics import (
    average_precision,
    classification_report,
    regression_report,
    roc_auc,
)
from tests.conftest import real_file

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CLASSES = [-1, 0, 1]


# --------------------------------------------------------------------------- HTML inspection


class _Page(HTMLParser):
    """Collects ids, scripts, external links and table text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.scripts: list[str] = []
        self.script_srcs: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.cells: list[str] = []
        self._in_script = False
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"] or "")
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(a[key] or "")
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
            if a.get("src"):
                self.script_srcs.append(a["src"] or "")
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)
            if self._in_cell:
                self.cells[-1] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _plotly_library_scripts(page: _Page) -> list[str]:
    return [s for s in page.scripts if "plotly.js v" in s[:300] or len(s) > 1_000_000]


# --------------------------------------------------------------------------- synthetic inputs


def _ts(n: int, step: timedelta = timedelta(minutes=1)) -> pl.Series:
    return (
        pl.datetime_range(T0, T0 + step * (n - 1), step, eager=True, time_zone="UTC")
        .cast(pl.Datetime("us", "UTC"))
        .alias("ts")
    )


def _proba(rng: np.random.Generator, y_idx: np.ndarray, k: int, skill: float = 1.5) -> np.ndarray:
    logits = rng.normal(size=(y_idx.size, k))
    logits[np.arange(y_idx.size), y_idx] += skill
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _price(n_per_symbol: int, symbols: list[str], rng: np.random.Generator) -> pl.DataFrame:
    parts = []
    for s in symbols:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n_per_symbol)))
        parts.append(
            pl.DataFrame({"ts": _ts(n_per_symbol), "symbol": [s] * n_per_symbol, "close": close})
        )
    return pl.concat(parts)


def _classifier(
    n: int, rng: np.random.Generator, *, symbols: list[str], with_shap: bool = True
) -> ModelSection:
    y_idx = rng.integers(0, 3, n)
    y = np.asarray(CLASSES)[y_idx]
    proba = _proba(rng, y_idx, 3)
    folds = pl.DataFrame(
        {
            "fold": [0, 1, 2],
            "n_train": [1000, 2000, 3000],
            "n_test": [500, 500, 500],
            "accuracy": [0.5123, 0.4871, 0.5309],
            "roc_auc": [0.6101, 0.5987, float("nan")],
            "log_loss": [1.0213, 1.0456, 0.9988],
        }
    )
    half = n // 2
    features = [f"feat_{i:02d}" for i in range(40)]
    imp = rng.random(40)
    price = _price(n // len(symbols), symbols, rng)
    p = _proba(rng, rng.integers(0, 3, price.height), 3)
    price = price.with_columns(
        pl.Series("p_-1", p[:, 0]), pl.Series("p_0", p[:, 1]), pl.Series("p_1", p[:, 2])
    )
    return ModelSection(
        name="LightGBM 3-class",
        task="classification",
        classes=CLASSES,
        fold_table=folds,
        oof_metrics=classification_report(y[:half], proba[:half], CLASSES),
        holdout_metrics=classification_report(y[half:], proba[half:], CLASSES),
        y_true=y[half:],
        proba=proba[half:],
        prediction=None,
        importance=pl.DataFrame({"feature": features, "mean": imp / imp.sum(), "std": imp / 50}),
        shap=pl.DataFrame({"feature": features, "mean_abs_shap": rng.random(40)})
        if with_shap
        else None,
        price=price,
    )


def _regressor(n: int, rng: np.random.Generator, *, symbols: list[str]) -> ModelSection:
    y = rng.normal(0, 1, n)
    pred = 0.5 * y + rng.normal(0, 0.8, n)
    price = _price(n // len(symbols), symbols, rng)
    price = price.with_columns(pl.Series("prediction", rng.normal(0, 1, price.height)))
    return ModelSection(
        name="XGB return regressor",
        task="regression",
        classes=None,
        fold_table=pl.DataFrame(
            {
                "fold": [0, 1],
                "n_train": [800, 1600],
                "n_test": [400, 400],
                "mae": [0.8123, 0.7954],
                "rmse": [1.0101, 0.9876],
            }
        ),
        oof_metrics=regression_report(y, pred),
        holdout_metrics=None,
        y_true=y,
        proba=None,
        prediction=pred,
        importance=None,
        shap=None,
        price=price,
    )


GATE_REASONS = ["fold 2: win rate 48.0% < 55%", "median profit factor 1.10 < 2.0"]


def _backtest(n: int, rng: np.random.Generator, *, symbols: list[str]) -> BacktestSection:
    per = n // len(symbols)
    price = _price(per, symbols, rng).with_columns(
        pl.col("close").alias("open"), pl.col("close").alias("high"), pl.col("close").alias("low")
    )
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, per)))
    eq = pl.DataFrame(
        {"ts": _ts(per), "equity": equity, "drawdown": 1 - equity / np.maximum.accumulate(equity)}
    )
    n_trades = max(4, per // 20)
    entry = np.sort(rng.integers(0, per - 10, n_trades))
    ts = _ts(per)
    trades = pl.DataFrame(
        {
            "symbol": rng.choice(symbols, n_trades).tolist(),
            "side": rng.choice(["long", "short"], n_trades).tolist(),
            "entry_ts": ts.gather(entry),
            "entry_price": 100 + rng.normal(0, 1, n_trades),
            "exit_ts": ts.gather(entry + 5),
            "exit_price": 100 + rng.normal(0, 1, n_trades),
            "qty": np.ones(n_trades),
            "pnl": rng.normal(0, 10, n_trades),
            "fees": np.full(n_trades, 0.1),
            "close_type": rng.choice(["TP_HIT", "SL_HIT", "TRAIL", "ML_EXIT"], n_trades).tolist(),
        }
    )
    counts = trades["close_type"].value_counts()
    return BacktestSection(
        metrics={
            "trades": float(n_trades),
            "win_rate": 0.52,
            "profit_factor": math.inf,
            "total_return": 0.0345,
            "sharpe": 1.23,
            "max_drawdown": 0.081,
            "sortino": float("nan"),
        },
        buy_hold={"total_return": -0.012, "sharpe": -0.3, "max_drawdown": 0.2},
        equity=eq,
        trades=trades,
        close_types=dict(
            zip(counts["close_type"].to_list(), counts["count"].to_list(), strict=True)
        ),
        price=price,
        dsr={"dsr": 0.874, "sr0": 0.0123, "n_trials": 40},
        gate={
            "passed": False,
            "reasons": GATE_REASONS,
            "folds": pl.DataFrame(
                {
                    "fold": [1, 2, 3],
                    "trades": [12.0, 9.0, 15.0],
                    "win_rate": [0.61, 0.48, 0.58],
                    "profit_factor": [2.1, 0.9, 1.1],
                }
            ),
        },
    )


def _report(
    n: int = 4_000,
    *,
    seed: int = 7,
    backtest: bool = True,
    shap: bool = True,
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
) -> RunReport:
    rng = np.random.default_rng(seed)
    syms = list(symbols)
    return RunReport(
        title="HYDRA test run <demo>",
        summary={
            "preset": "hydra",
            "symbols": syms,
            "interval": "1m",
            "rows": n,
            "data range": f"{T0:%Y-%m-%d} .. 2024-03-01",
            "runtime_s": 12.5,
            "registry": "BTC-universe/hydra@v0003",
        },
        config={"seed": 42, "model": {"kind": "lightgbm", "lr": float("nan")}},
        models=[
            _classifier(n, rng, symbols=syms, with_shap=shap),
            _regressor(n, rng, symbols=syms),
        ],
        backtest=_backtest(n, rng, symbols=syms) if backtest else None,
        notes=["synthetic data, for tests only"],
    )


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Page, RunReport]:
    report = _report()
    path = write_report(tmp_path_factory.mktemp("rep") / "run.html", report)
    return path, _parse(path), report


# --------------------------------------------------------------------------- the page


def test_page_is_self_contained_with_one_inline_plotly(
    full_report: tuple[Path, _Page, RunReport],
) -> None:
    _, page, _ = full_report
    assert len(_plotly_library_scripts(page)) == 1
    assert page.script_srcs == []
    external = [u for u in page.urls if u.lower().startswith(("http:", "https:", "//"))]
    assert external == []
    # every figure div is drawn by its own small Plotly.newPlot call
    n_divs = sum(1 for i in page.ids if i.startswith("fig-"))
    assert n_divs >= 12
    assert sum("Plotly.newPlot" in s for s in page.scripts) == n_divs


def test_every_section_is_present_and_linked_from_the_toc(
    full_report: tuple[Path, _Page, RunReport],
) -> None:
    path, page, _ = full_report
    expected = {
        "summary",
        "toc",
        "notes",
        "config",
        "backtest",
        "backtest-metrics",
        "backtest-equity",
        "backtest-trades",
        "backtest-close-types",
        "backtest-dsr",
        "backtest-gate",
        "model-lightgbm-3-class",
        "model-lightgbm-3-class-folds",
        "model-lightgbm-3-class-metrics",
        "model-lightgbm-3-class-confusion",
        "model-lightgbm-3-class-reliability",
        "model-lightgbm-3-class-roc-pr",
        "model-lightgbm-3-class-importance",
        "model-lightgbm-3-class-shap",
        "model-lightgbm-3-class-price",
        "model-xgb-return-regressor",
        "model-xgb-return-regressor-scatter",
        "model-xgb-return-regressor-residuals",
        "model-xgb-return-regressor-price",
    }
    assert expected <= set(page.ids)
    assert len(page.ids) == len(set(page.ids)), "ids must be unique"
    anchors = {u[1:] for u in page.urls if u.startswith("#")}
    assert expected - {"summary", "toc"} <= anchors
    assert "HYDRA test run &lt;demo&gt;" in path.read_text(encoding="utf-8")  # escaped, not markup


def test_fold_table_shows_the_given_values(full_report: tuple[Path, _Page, RunReport]) -> None:
    _, page, _ = full_report
    cells = set(page.cells)
    for v in ("0.5123", "0.4871", "0.5309", "0.6101", "1.0213", "0.8123", "0.7954", "3000"):
        assert v in cells
    assert "NaN" in cells  # undefined fold metric shown as such, not hidden
    # mean row over the three accuracies
    assert f"{np.mean([0.5123, 0.4871, 0.5309]):.4f}" in cells


def test_gate_verdict_reasons_and_backtest_metrics(
    full_report: tuple[Path, _Page, RunReport],
) -> None:
    _, page, _ = full_report
    text = " ".join(page.text)
    for reason in GATE_REASONS:
        assert reason in text
    assert "FAIL" in text
    cells = set(page.cells)
    assert {"3.45%", "-1.20%", "8.10%", "∞", "0.8740", "0.6100"} <= cells


def test_summary_header_lists_the_run(full_report: tuple[Path, _Page, RunReport]) -> None:
    _, page, _ = full_report
    cells = page.cells
    assert "preset" in cells and "hydra" in cells
    assert "BTC-universe/hydra@v0003" in cells
    assert '["BTCUSDT", "ETHUSDT"]' in cells


def test_atomic_write_leaves_only_the_report(tmp_path: Path) -> None:
    path = write_report(tmp_path / "sub" / "r.html", _report(600, backtest=False))
    json_path = write_metrics_json(tmp_path / "sub" / "m.json", _report(600))
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["m.json", "r.html"]
    assert path.stat().st_size > 4_000_000  # plotly.js itself is inline
    assert json_path.read_text().endswith("\n")


def test_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    blocker = tmp_path / "r.html"
    blocker.mkdir()  # os.replace onto a directory fails
    with pytest.raises(ReportError, match="cannot write"):
        write_report(blocker, _report(600, backtest=False))
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
    assert list(blocker.iterdir()) == []


def test_report_without_backtest_or_shap_renders(tmp_path: Path) -> None:
    report = _report(800, backtest=False, shap=False)
    report.models[0].holdout_metrics = None
    page = _parse(write_report(tmp_path / "r.html", report))
    assert "backtest" not in page.ids and "backtest-gate" not in page.ids
    assert "model-lightgbm-3-class-shap" not in page.ids
    assert "model-lightgbm-3-class-confusion" in page.ids
    assert len(_plotly_library_scripts(page)) == 1
    assert "holdout" not in page.cells  # no holdout column when there is no holdout


def test_minimal_model_without_arrays_renders_notes(tmp_path: Path) -> None:
    m = ModelSection(
        name="bare",
        task="classification",
        classes=["a", "b"],
        fold_table=pl.DataFrame({"fold": [0], "accuracy": [0.5]}),
        oof_metrics={"accuracy": 0.5},
    )
    page = _parse(write_report(tmp_path / "r.html", RunReport("t", {}, models=[m])))
    assert {"model-bare-roc-pr", "model-bare-confusion"} <= set(page.ids)
    assert any("not available" in t for t in page.text)


@pytest.mark.slow
def test_file_size_bounded_with_200k_rows(tmp_path: Path) -> None:
    report = _report(
        200_000, seed=3, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT")
    )
    path = write_report(tmp_path / "big.html", report)
    size = path.stat().st_size
    assert size < 6_000_000, f"{size / 1e6:.2f} MB"
    page = _parse(path)
    text = " ".join(page.text)
    assert "not charted: XRPUSDT" in text
    # the 40k-bar per-symbol series were decimated, never dropped
    assert sum(1 for i in page.ids if i.startswith("fig-")) >= 20


# --------------------------------------------------------------------------- JSON


def test_metrics_json_is_strict_with_nan_as_null(tmp_path: Path) -> None:
    report = _report(600)
    path = write_metrics_json(tmp_path / "m.json", report)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["summary"]["preset"] == "hydra"
    assert data["config"]["model"]["lr"] is None
    clf, reg = data["models"]
    assert clf["classes"] == CLASSES
    assert clf["folds"][2]["roc_auc"] is None and clf["folds"][0]["accuracy"] == 0.5123
    assert clf["oof"]["accuracy"] == pytest.approx(report.models[0].oof_metrics["accuracy"])
    assert (
        clf["holdout"]["confusion_matrix"] == report.models[0].holdout_metrics["confusion_matrix"]
    )
    assert reg["holdout"] is None and reg["oof"]["mae"] == pytest.approx(
        report.models[1].oof_metrics["mae"]
    )
    bt = data["backtest"]
    assert bt["metrics"]["profit_factor"] is None and bt["metrics"]["sortino"] is None
    assert bt["gate"]["passed"] is False and bt["gate"]["reasons"] == GATE_REASONS
    assert [f["fold"] for f in bt["gate"]["folds"]] == [1, 2, 3]
    assert bt["dsr"]["n_trials"] == 40
    assert metrics_payload(report) == data


def test_invalid_inputs_raise_report_error(tmp_path: Path) -> None:
    report = _report(600, backtest=False)
    report.models[0].proba = report.models[0].proba[:, :2]
    with pytest.raises(ReportError, match="proba shape"):
        write_report(tmp_path / "r.html", report)
    report = _report(600, backtest=False)
    report.models[1].task = "ranking"
    with pytest.raises(ReportError, match="task must be"):
        write_report(tmp_path / "r.html", report)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- figure helpers


def test_minmax_decimation_keeps_extremes_and_cap() -> None:
    y = np.sin(np.linspace(0, 50, 100_000))
    y[12_345] = 9.0
    y[77_777] = -9.0
    y[500] = np.nan
    idx = F.minmax_indices(y, 5_000)
    assert idx.size <= 5_000
    assert np.all(np.diff(idx) > 0)
    assert {0, 99_999, 12_345, 77_777} <= set(idx.tolist())
    assert np.array_equal(F.minmax_indices(y[:10], 5_000), np.arange(10))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3_000), st.integers(4, 400), st.integers(0, 2**31))
def test_minmax_decimation_properties(n: int, cap: int, seed: int) -> None:
    y = np.random.default_rng(seed).normal(size=n)
    idx = F.minmax_indices(y, cap)
    assert idx.size <= max(cap, 0) or n <= cap
    assert idx.size == len(set(idx.tolist())) and np.all(np.diff(idx) > 0)
    assert y[idx].max() == y.max() and y[idx].min() == y.min()


def test_binary_curves_match_metric_functions() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3_000)
    s = np.round(rng.random(3_000) + 0.3 * y, 2)  # ties on purpose
    cur = F.binary_curves(y, s)
    assert cur is not None
    assert cur["roc_auc"] == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert cur["average_precision"] == pytest.approx(average_precision(y, s), abs=1e-12)
    assert cur["fpr"][0] == 0 and cur["tpr"][-1] == 1 and cur["fpr"][-1] == 1
    assert F.binary_curves(np.ones(5), np.arange(5.0)) is None


def test_binary_curves_hand_example() -> None:
    cur = F.binary_curves(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]))
    assert cur is not None
    np.testing.assert_allclose(cur["fpr"], [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(cur["tpr"], [0, 0.5, 0.5, 1, 1])
    assert cur["roc_auc"] == pytest.approx(0.75)
    assert cur["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_epoch_ms_reads_utc_microseconds() -> None:
    s = pl.Series("ts", [datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)]).cast(
        pl.Datetime("us", "UTC")
    )
    assert F.epoch_ms(s)[0] == 1_704_067_200_250.0


def test_trade_markers_are_sampled_beyond_the_cap() -> None:
    n = 5_000
    ts = _ts(n)
    price = pl.DataFrame({"ts": ts, "close": np.linspace(100, 110, n)})
    trades = pl.DataFrame(
        {
            "side": ["long", "short"] * (n // 2),
            "entry_ts": ts,
            "entry_price": np.full(n, 100.0),
            "exit_ts": ts,
            "exit_price": np.full(n, 101.0),
            "pnl": np.ones(n),
            "close_type": ["TP_HIT"] * n,
        }
    )
    fig = F.trades_price_figure(price, trades, "BTCUSDT", max_points=1_000, max_markers=1_000)
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["close"].x) <= 1_000
    assert len(by_name["entry long"].x) + len(by_name["entry short"].x) == 1_000
    assert len(by_name["exit TP_HIT"].x) == 1_000
    assert "1,000 of 5,000 trades" in fig.layout.title.text


@pytest.mark.realdata
def test_real_btc_minutes_keep_their_extremes_and_time_span(
    real_data_dir: Path, tmp_path: Path
) -> None:
    path = real_file("binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2021-03-26_2021-04-30.csv.gz")
    bars = pl.read_csv(path, try_parse_dates=True).select(
        pl.col("timestamp").dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.lit("BTCUSDT").alias("symbol"),
        "open",
        "high",
        "low",
        "close",
    )
    assert bars.height > 40_000
    ret = bars["close"].log().diff(10).fill_null(0.0).to_numpy()
    price = bars.with_columns(pl.Series("p_1", 1.0 / (1.0 + np.exp(-200.0 * ret))))
    fig = F.prediction_price_figure(price, ["p_1"], "BTCUSDT")
    close = fig.data[0]
    assert len(close.y) <= F.MAX_TRACE_POINTS
    c = bars["close"].to_numpy()
    assert float(np.max(close.y)) == pytest.approx(c.max(), rel=1e-6)
    assert float(np.min(close.y)) == pytest.approx(c.min(), rel=1e-6)
    assert (
        close.x[0] == bars["ts"][0].timestamp() * 1000
        and close.x[-1] == bars["ts"][-1].timestamp() * 1000
    )

    equity = pl.DataFrame({"ts": bars["ts"], "equity": 10_000 * c / c[0]})
    report = RunReport(
        "real BTC",
        {"symbols": ["BTCUSDT"], "rows": bars.height},
        backtest=BacktestSection(
            metrics={"total_return": float(c[-1] / c[0] - 1)},
            buy_hold={},
            equity=equity,
            trades=pl.DataFrame(),
            close_types={},
            price=bars,
        ),
    )
    page_path = write_report(tmp_path / "real.html", report)
    assert page_path.stat().st_size < 5_300_000
    page = _parse(page_path)
    assert {"backtest-equity", "backtest-trades"} <= set(page.ids)


def test_confusion_figure_hand_example() -> None:
    fig = F.confusion_figure([[3, 1], [0, 4]], ["down", "up"])
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z), [[0.75, 0.25], [0.0, 1.0]])
    assert np.asarray(heat.text).tolist() == [[3, 1], [0, 4]]
    assert list(heat.x) == ["down", "up"]


def test_binary_string_classes_render(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    classes = ["down", "up"]
    yi = rng.integers(0, 2, 1_000)
    proba = _proba(rng, yi, 2)
    y = np.asarray(classes)[yi]
    m = ModelSection(
        name="binary",
        task="classification",
        classes=classes,
        fold_table=pl.DataFrame({"fold": [0], "accuracy": [0.61]}),
        oof_metrics=classification_report(y, proba, classes),
        y_true=y,
        proba=proba,
    )
    path = write_report(tmp_path / "b.html", RunReport("binary run", {"rows": 1_000}, models=[m]))
    page = _parse(path)
    assert {"model-binary-confusion", "model-binary-reliability", "model-binary-roc-pr"} <= set(
        page.ids
    )
    auc = classification_report(y, proba, classes)["roc_auc"]
    assert f"up AUC={auc:.3f}" in path.read_text(encoding="utf-8")  # one curve: the positive class
    assert "down AUC=" not in path.read_text(encoding="utf-8")
