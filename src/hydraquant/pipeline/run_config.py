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
from math import comb
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
    """Purged cross-validation on the development rows (everything before the holdout).

    ``purged_walk_forward`` / ``expanding`` / ``rolling`` run ``n_splits`` folds.
    ``cpcv`` (combinatorial purged CV, SPEC V1/V2) cuts the rows into
    ``n_groups`` groups and tests every combination of ``n_test_groups`` of
    them: C(n_groups, n_test_groups) splits that stitch into
    C(n_groups - 1, n_test_groups - 1) backtest paths.  The split count of
    ``cpcv`` follows from the groups, so it ignores ``n_splits`` (which has a
    default and is set by presets, so ``--set cv.kind='cpcv'`` must keep
    working); ``n_groups`` / ``n_test_groups`` mean nothing to the other
    kinds and are refused there rather than silently ignored.
    """

    kind: Literal["purged_walk_forward", "expanding", "rolling", "cpcv"] = "purged_walk_forward"
    n_splits: int = Field(5, ge=2, le=50)
    n_groups: int | None = Field(None, ge=2, le=20, description="cpcv only (default 6)")
    n_test_groups: int | None = Field(None, ge=1, le=19, description="cpcv only (default 2), < n_groups")
    embargo: str = "0s"
    validation_fraction: float = Field(0.15, ge=0.0, lt=0.5)

    @model_validator(mode="after")
    def _groups(self) -> CVSpec:
        if self.kind != "cpcv":
            given = [k for k in ("n_groups", "n_test_groups") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"cv.{given[0]} applies only to kind='cpcv'; kind={self.kind!r} uses n_splits")
            return self
        if self.groups[1] >= self.groups[0]:
            raise ValueError(f"cv.n_test_groups ({self.groups[1]}) must be < cv.n_groups ({self.groups[0]}): "
                             "at least one group must stay in training")
        return self

    @property
    def groups(self) -> tuple[int, int]:
        """(n_groups, n_test_groups) of ``cpcv`` with the defaults 6 and 2 filled in."""
        return (6 if self.n_groups is None else self.n_groups, 2 if self.n_test_groups is None else self.n_test_groups)

    @property
    def n_folds(self) -> int:
        """Number of models trained per learner (splits of the splitter)."""
        return comb(*self.groups) if self.kind == "cpcv" else self.n_splits

    @property
    def n_blocks(self) -> int:
        """Contiguous time blocks the rows are cut into (sizes the minimum row count)."""
        return self.groups[0] if self.kind == "cpcv" else self.n_splits


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


CAUSAL_REGIMES = ("trend_regime", "market_state", "hydra_regime")
"""Labelers whose regime at t uses bars up to t only (``hydra_regime`` only with ``forward=false``)."""


def check_causal_regime(spec: str, where: str) -> str:
    """Refuse a forward-looking regime spec: a router/filter acts at t and may only know the past."""
    name, _, params = spec.partition(":")
    name = name.strip()
    if name not in CAUSAL_REGIMES:
        raise ValueError(f"{where}: {spec!r} is not a causal regime labeler; use one of {', '.join(CAUSAL_REGIMES)}")
    if name == "hydra_regime":
        flags = {k.strip(): v.strip().lower() for k, _, v in (p.partition("=") for p in params.split(",")) if k}
        if flags.get("forward") != "false":
            raise ValueError(f"{where}: hydra_regime labels the FUTURE window by default; "
                             "write 'hydra_regime:forward=false' for the causal trailing-window rule")
    return spec


class RouterSpec(Section):
    """Regime router of a model job (SPEC M5/M6, seed 004 §18.3, §22.6): one specialist per regime.

    ``regime`` is a causal regime labeler spec (known at t, e.g.
    ``trend_regime:band=0.0005``).  A regime becomes active after
    ``hysteresis_bars`` consecutive bars of it; until one is confirmed
    ``default`` is active.  Rows routed to a regime without a specialist, or
    whose specialist's top probability is below ``min_confidence``, take the
    ``fallback`` learner (one of the job's learners, trained on all rows).
    A regime with fewer than ``min_rows`` development rows gets no specialist.
    """

    regime: str
    hysteresis_bars: int = Field(3, ge=1, le=1000)
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    default: int | None = Field(None, description="regime code active until a regime is confirmed")
    fallback: str | None = Field(None, description="name of a learner of this job, trained on all rows")
    min_rows: int = Field(200, ge=20)

    @model_validator(mode="after")
    def _causal(self) -> RouterSpec:
        check_causal_regime(self.regime, "router.regime")
        if self.fallback is None and self.default is None:
            raise ValueError("router needs default (the regime active before one is confirmed) or fallback "
                             "(a learner for rows no specialist covers)")
        if self.fallback is None and self.min_confidence > 0:
            raise ValueError("router.min_confidence > 0 sends unsure rows to the fallback: set router.fallback")
        return self


class ModelJob(Section):
    """One trained model = one registry bundle.

    ``label`` is a label spec as in ``hydraquant label --spec``; ``target`` the
    label column to learn.  ``split_by`` trains one bundle per value of a
    label side column (seed 000: one regressor per direction x vol regime);
    ``rows`` keeps only rows whose label columns take the listed values;
    ``regime_filter`` keeps rows whose *causal* regime (a trailing rule such
    as ``trend_regime``, known at t) is in ``regime_values`` (seed 002: the
    regime is a filter, not a feature).  ``ensemble = "regime_router"`` with
    a ``router`` table trains one specialist per causal regime instead of one
    model (see :class:`RouterSpec`).
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
    ensemble: Literal["mean", "fold_average", "auc_pr_weighted", "vote", "stack", "regime_router"] = "mean"
    router: RouterSpec | None = Field(None, description="the [models.router] table of ensemble='regime_router'")
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
        if self.regime_filter:
            check_causal_regime(self.regime_filter, f"model {self.name!r}: regime_filter")
        if self.backtest and self.task != "classification":
            raise ValueError(f"model {self.name!r}: only classification models drive the backtest")
        if self.backtest and not self.signal_classes:
            raise ValueError(f"model {self.name!r}: backtest=true needs signal_classes (which class is long/short)")
        if (self.ensemble == "regime_router") != (self.router is not None):
            raise ValueError(f"model {self.name!r}: ensemble='regime_router' and a [models.router] table go together")
        if self.router is not None:
            if self.task != "classification":
                raise ValueError(f"model {self.name!r}: the regime router supports classification only")
            if self.router.fallback is not None and self.router.fallback not in names:
                raise ValueError(f"model {self.name!r}: router.fallback {self.router.fallback!r} is not one of "
                                 f"its learners {names}")
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
