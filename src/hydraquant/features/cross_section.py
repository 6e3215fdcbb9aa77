"""F9 cross-sectional features: per-timestamp ranks across symbols, and the symbol one-hot helper.

Why ranks: a multi-symbol model learns "this coin is moving more than the
others right now" better from ranks than from raw values whose scale differs
per coin.  A rank at ts only uses values of the same ts, so it is causal as
long as its inputs are.

``cs_rank_<name>`` = (average rank - 1) / (n - 1) among the symbols that have
a value at that ts: 0 = lowest, 1 = highest, 0.5 when only one symbol has a
value; NaN where the symbol's own value is missing.  Registered for a few
base features here; :func:`register_cs_rank` adds more (e.g. from a preset).

Symbol one-hot is NOT a registered feature: its columns depend on the
universe, which a per-frame function cannot know (a frame holding only
BTCUSDT must still produce ``pair_ETHUSDT = 0`` for a model trained on 8
pairs).  The dataset builder calls :func:`symbol_onehot` with the universe
stored in the model's manifest; names follow seed 000 (``pair_BTCUSDT``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from hydraquant.features.registry import FeatureError, feature

GROUP = "cross_section"
DEFAULT_RANKED = ("ret_60", "ret_15", "volume_surge", "rsi_14", "vwap_deviation")


def cs_rank(name: str) -> pl.Expr:
    """Expression ranking column ``name`` across symbols at each ``ts``, scaled to [0, 1]."""
    value = pl.col(name).cast(pl.Float64).fill_nan(None)
    rank = value.rank("average").over("ts")
    count = value.count().over("ts").cast(pl.Float64)
    return (
        pl.when(value.is_null())
        .then(None)
        .when(count > 1)
        .then((rank - 1.0) / (count - 1.0))
        .otherwise(0.5)
    )


def register_cs_rank(name: str) -> str:
    """Register ``cs_rank_<name>`` (idempotent) and return its name."""
    rank_name = f"cs_rank_{name}"

    def rank_feature(panel: pl.DataFrame) -> pl.Expr:
        return cs_rank(name)

    rank_feature.__doc__ = f"Cross-sectional rank of {name} at each ts, in [0, 1]."
    try:
        feature(rank_name, group=GROUP, scope="panel", depends_on=(name,))(rank_feature)
    except FeatureError:  # already registered (same name, earlier closure): nothing to do
        pass
    return rank_name


for _name in DEFAULT_RANKED:
    register_cs_rank(_name)


def symbol_onehot(
    frame: pl.DataFrame, universe: Sequence[str], *, prefix: str = "pair_"
) -> pl.DataFrame:
    """Append one Float64 column ``<prefix><SYMBOL>`` per universe symbol (1.0 on that symbol's rows).

    The universe order is the column order, so pass the list a model was
    trained with.  A symbol outside the universe is an error: silently giving
    it all zeros would feed the model a coin it has never seen.
    """
    if "symbol" not in frame.columns:
        raise FeatureError(
            "symbol_onehot needs a 'symbol' column", hint="pass the long frame (ts, symbol, ...)"
        )
    if len(set(universe)) != len(universe):
        raise FeatureError(f"symbol universe has duplicates: {list(universe)}")
    unknown = sorted(set(frame.get_column("symbol").unique().to_list()) - set(universe))
    if unknown:
        raise FeatureError(
            f"symbols {unknown} are not in the model's universe {list(universe)}",
            hint="retrain with these symbols or drop them from the dataset",
        )
    return frame.with_columns(
        (pl.col("symbol") == sym).cast(pl.Float64).alias(f"{prefix}{sym}") for sym in universe
    )
