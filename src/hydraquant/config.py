"""Configuration as validated data (TOML -> pydantic), with ``--set a.b=c`` overrides.

Why strict: a typo in a config key (``lake.rot``) silently falling back to a
default is how a backtest ends up on the wrong data.  Every section forbids
unknown keys and errors name the dotted path, what was wrong and the allowed
keys.

Precedence (highest first): ``--lake`` flag, ``--set`` overrides,
``HYDRAQUANT_LAKE`` (for ``lake.root`` only), the ``--config`` file, defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hydraquant.backtest.config import BacktestConfig
from hydraquant.errors import ConfigError

DEFAULT_BINANCE_URL = "https://data.binance.vision"


class Section(BaseModel):
    """Base for every config section: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class LakeConfig(Section):
    root: Path = Path("lake")


class BinanceConfig(Section):
    base_url: str = DEFAULT_BINANCE_URL
    workers: int = Field(8, ge=1, le=64)
    retries: int = Field(3, ge=0, le=20)
    timeout_s: float = Field(60.0, gt=0)
    cache_dir: Path | None = None  # default: <lake>/_downloads/binance


class BarsConfig(Section):
    empty: Literal["drop", "ffill"] = "drop"


class RegistryConfig(Section):
    root: Path = Path("models")


class RunsConfig(Section):
    root: Path = Path("runs")


class HydraConfig(Section):
    lake: LakeConfig = LakeConfig()
    backtest: BacktestConfig = BacktestConfig()
    registry: RegistryConfig = RegistryConfig()
    runs: RunsConfig = RunsConfig()
    binance: BinanceConfig = BinanceConfig()
    bars: BarsConfig = BarsConfig()


def _allowed_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in path:
        if isinstance(part, int):  # an item of a list/tuple of sections
            args = [a for a in get_args(current) if a is not Ellipsis]
            current = args[0] if args else None
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))


def format_validation_errors(exc: ValidationError, source: str, model: type[BaseModel] | None = None) -> str:
    """One line per error: the dotted key, what was wrong, and (for unknown keys) the allowed ones."""
    model = model or HydraConfig
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            section = ".".join(str(p) for p in loc[:-1]) or "top level"
            lines.append(
                f"unknown key '{dotted}' in {source}; allowed keys in {section}: {', '.join(allowed)}"
            )
        else:
            lines.append(f"'{dotted}' in {source}: {err['msg']} (got {err.get('input')!r})")
    return "\n  ".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3); values are TOML literals, else plain strings."""
    if "=" not in text:
        raise ConfigError(f"invalid --set {text!r}", hint="use --set section.key=value, e.g. --set bars.empty=ffill")
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"invalid --set {text!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return path, value


def _apply(data: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    """Set ``value`` at the dotted ``path``; numeric parts index into arrays (``models.0.name``)."""
    node: Any = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{origin}: '{'.'.join(path)}': '{part}' is not an index of a list of "
                                  f"{len(node)} item(s)", hint="use a 0-based index, e.g. models.0.name")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"{origin}: '{'.'.join(path)}' goes through '{path[i - 1]}', which is not a section")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    lake: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
) -> HydraConfig:
    """Build the effective configuration from file, environment and CLI."""
    environ = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} not found", hint="pass an existing TOML file with --config")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
        source = str(p)
    if environ.get("HYDRAQUANT_LAKE"):
        _apply(data, ["lake", "root"], environ["HYDRAQUANT_LAKE"], "HYDRAQUANT_LAKE")
    for text in overrides:
        key, value = parse_override(text)
        _apply(data, key, value, f"--set {text}")
    if lake is not None:
        _apply(data, ["lake", "root"], str(lake), "--lake")
    try:
        return HydraConfig.model_validate(data)
    except ValidationError as exc:
        origin = source + (" with --set overrides" if overrides else "")
        raise ConfigError(format_validation_errors(exc, origin)) from None
