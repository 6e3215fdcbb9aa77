"""Config: TOML validated by pydantic, --set overrides, precedence, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hydraquant.config import load_config, parse_override
from hydraquant.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


def test_defaults():
    cfg = load_config(environ={})
    assert cfg.lake.root == Path("lake")
    assert cfg.bars.empty == "drop"


def test_file_env_set_and_flag_precedence(tmp_path):
    p = write(tmp_path, '[lake]\nroot = "from_file"\n[binance]\nworkers = 3\n')
    assert load_config(p, environ={}).lake.root == Path("from_file")
    assert load_config(p, environ={"HYDRAQUANT_LAKE": "from_env"}).lake.root == Path("from_env")
    cfg = load_config(p, overrides=["lake.root=from_set"], environ={"HYDRAQUANT_LAKE": "from_env"})
    assert cfg.lake.root == Path("from_set")
    cfg = load_config(p, overrides=["lake.root=from_set"], lake="from_flag", environ={})
    assert cfg.lake.root == Path("from_flag")
    assert cfg.binance.workers == 3


def test_unknown_key_names_dotted_path_and_allowed_keys(tmp_path):
    p = write(tmp_path, "[binance]\nbase_ulr = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(p, environ={})
    msg = str(info.value)
    assert "binance.base_ulr" in msg and "base_url" in msg and "workers" in msg and str(p) in msg


def test_unknown_section_and_mistyped_value(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'lakes'.*allowed keys in top level: backtest, bars, binance"):
        load_config(write(tmp_path, "[lakes]\nroot='x'\n"), environ={})
    with pytest.raises(ConfigError, match="'binance.workers'"):
        load_config(overrides=["binance.workers=lots"], environ={})
    with pytest.raises(ConfigError, match="'bars.empty'"):
        load_config(overrides=["bars.empty=bfill"], environ={})


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[lake\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_parse_override_values():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a.b=true") == (["a", "b"], True)
    assert parse_override("a.b=ffill") == (["a", "b"], "ffill")
    assert parse_override('a.b=["1m","5m"]') == (["a", "b"], ["1m", "5m"])
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("novalue")
    with pytest.raises(ConfigError, match="not a section"):
        load_config(overrides=["lake.root=x", "lake.root.deeper=1"], environ={})
