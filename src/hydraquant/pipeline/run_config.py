"""`hydraquant run CONFIG`: the run configuration as validated data.

Why one document: a run (data -> features -> labels -> CV -> calibration ->
ensemble -> holdout -> backtest -> registry -> report) is only reproducible
if everything that shaped it is written down; the manifest stores this model
dump verbatim.  Every section refuses unknown keys and errors name the
dotted path (the same rules as the global config).
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from hydraquant.backtest.config import BacktestConfig
from hydraquant.config import Section, _apply, format_validation_errors, parse_override
from hydraquant.errors import ConfigError

LEARNER_KINDS = ("lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "logistic", "mlp")


class SimulateData(Section):
    """Simulated market (SPEC D6); ``planted_edge`` 0 = a null market."""

    symbols: int = Field(2, ge=1, le=8)
    days: int = Field(2, ge=1, le=60)
    seed: int = 7
    planted_edge: float = 0.0
    edge_horizon_s: float = Field(30.0, gt=0)
    activity: float = Field(0.15, gt=0, le=2)
    start: date | None = None


class DataSpec(Section):
    """Where the bars come from.

    ``simulate``: trades from the simulator, bars built at ``interval``.
    ``files``: real files imported with the generic importers (paths relative
    to the working directory, else to the config file), klines resampled to
    ``interval`` when they are finer.  ``lake``: tables already in the lake.
    """

    source: Literal["simulate", "files", "lake"] = "simulate"
    interval: str = "1m"
    symbols: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    file_interval: str | None = Field(None, description="interval of imported klines when finer than interval")
    bars: Literal["auto", "bars", "klines"] = "auto"
    exchange: str | None = None
    market: str | None = None
    start: str | None = None
    end: str | None = None
    simulate: SimulateData = SimulateData()

    @model_validator(mode="after")
    def _consistent(self) -> DataSpec:
        if self.source == "files" and not self.files:
            raise ValueError("data.source='files' needs data.files (paths of the files to import)")
        if self.source == "lake" and not self.symbols:
            raise ValueError("data.source='lake' needs data.symbols")
        return self


class FeatureSpec(Section):
    sets: tuple[str, ...] = ("hydra_v3",)
    exclude: tuple[str, ...] = ()
    causality_check: bool = Field(True, description="run the V4 leakage check on the chosen features first")


class CVSpec(Section):
    """Purged cross-validation on the development rows (everything before the holdout)."""

    kind: Literal["purged_walk_forward", "expanding", "rolling"] = "purged_walk_forward"
    n_splits: int = Field(5, ge=2, le=50)
    embargo: str = "0s"
    validation_fraction: float = Field(0.15, ge=0.0, lt=0.5)


class HoldoutSpec(Section):
    """The final untouched slice: the last ``fraction`` of the time span, or from ``start``."""

    fraction: float = Field(0.2, gt=0.0, lt=0.9)
    start: str | None = None


class LearnerEntry(Section):
    """One learner of a model (fields of ``hydraquant.models.zoo.ModelSpec`` plus a name)."""

    name: str
    kind: Literal["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "logistic", "mlp"]
    params: dict[str, Any] = {}
    class_weight: Literal["balanced"] | None = None
    early_stopping_rounds: int | None = 50
    seed: int = 42
    categorical: tuple[str, ...] = ()


class ModelJob(Section):
    """One trained model = one registry bundle.

    ``label`` is a label spec as in ``hydraquant label --spec``; ``target`` the
    label column to learn.  ``split_by`` trains one bundle per value of a
    label side column (seed 000: one regressor per direction x vol regime);
    ``rows`` keeps only rows whose label columns take the listed values;
    ``regime_filter`` keeps rows whose *causal* regime (a trailing rule such
    as ``trend_regime``, known at t) is in ``regime_values`` (seed 002: the
    regime is a filter, not a feature).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    label: str
    target: str = "label"
    task: Literal["classification", "regression"] = "classification"
    split_by: str | None = None
    rows: dict[str, list[Any]] = {}
    regime_filter: str | None = Field(None, description="causal regime labeler spec, e.g. 'trend_regime'")
    regime_values: tuple[int, ...] = Field((), description="train only on rows whose causal regime is one of these")
    target_transform: Literal["none", "mfe_clip_log1p"] = "none"
    weights: tuple[Literal["balanced", "recency", "uniqueness"], ...] = ()
    half_life: str = "30d"
    learners: tuple[LearnerEntry, ...]
    ensemble: Literal["mean", "fold_average", "auc_pr_weighted", "vote", "stack"] = "mean"
    calibration: Literal["isotonic", "platt", "temperature", "none"] = "isotonic"
    signal_classes: dict[Literal["long", "short", "flat"], Any] = {}
    backtest: bool = Field(False, description="backtest this model's holdout predictions with the policy")

    @model_validator(mode="after")
    def _consistent(self) -> ModelJob:
        if not self.learners:
            raise ValueError(f"model {self.name!r} needs at least one learner")
        names = [learner.name for learner in self.learners]
        if len(set(names)) != len(names):
            raise ValueError(f"model {self.name!r}: learner names must be unique, got {names}")
        if self.task == "regression" and self.calibration not in ("isotonic", "none"):
            raise ValueError(f"model {self.name!r}: regression supports calibration 'isotonic' or 'none'")
        if bool(self.regime_filter) != bool(self.regime_values):
            raise ValueError(f"model {self.name!r}: regime_filter and regime_values go together")
        if self.backtest and self.task != "classification":
            raise ValueError(f"model {self.name!r}: only classification models drive the backtest")
        if self.backtest and not self.signal_classes:
            raise ValueError(f"model {self.name!r}: backtest=true needs signal_classes (which class is long/short)")
        return self


class RunConfig(Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    universe: str | None = Field(None, description="registry universe; default: the symbols joined by '-'")
    data: DataSpec = DataSpec()
    features: FeatureSpec = FeatureSpec()
    cv: CVSpec = CVSpec()
    holdout: HoldoutSpec = HoldoutSpec()
    models: tuple[ModelJob, ...]
    backtest: BacktestConfig = BacktestConfig()
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unique_models(self) -> RunConfig:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        if sum(m.backtest for m in self.models) > 1:
            raise ValueError("at most one model may have backtest = true")
        return self


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[RunConfig, Path]:
    """Read a run TOML (a path, or a preset name from ``configs/``) and apply ``key=value`` overrides."""
    p = resolve_config_path(path)
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"run config {p} is not valid TOML: {exc}") from None
    for text in overrides:
        key, value = parse_override(text)
        _apply(data, key, value, f"--set {text}")
    try:
        return RunConfig.model_validate(data), p
    except ValidationError as exc:
        origin = str(p) + (" with --set overrides" if overrides else "")
        raise ConfigError(format_validation_errors(exc, origin, RunConfig)) from None


def presets_dir() -> Path:
    """``configs/`` of the source checkout (presets ship with the repository)."""
    return Path(__file__).resolve().parents[3] / "configs"


def list_presets() -> list[str]:
    root = presets_dir()
    return sorted(p.stem for p in root.glob("*.toml")) if root.is_dir() else []


def resolve_config_path(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    preset = presets_dir() / f"{path}.toml"
    if preset.is_file():
        return preset
    raise ConfigError(
        f"run config {path} not found (neither a file nor a preset)",
        hint=f"pass a TOML file or one of the presets: {', '.join(list_presets()) or '(none found)'}",
    )
