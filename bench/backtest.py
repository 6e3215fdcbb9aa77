"""Backtest engine benchmark: SMA cross on ~1 M one-minute bars vs vectorbt and backtesting.py,
and the full policy (Kelly, trailing, partial, guards) throughput in bars/s.

Run: ``.venv/bin/python bench/backtest.py [--bars 1000000] [--btpy-bars 100000]``.
Real BTCUSDT 1m bars (../shared/data/real) are tiled, each copy rescaled to
continue from the previous close.  Timings are steady state: every engine
runs once to compile/warm up, then the best of ``--repeat`` runs is kept.
backtesting.py is timed on ``--btpy-bars`` bars and reported per bar (it is
a pure-Python event loop; 1 M bars would take minutes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import polars as pl

from hydraquant.backtest import CostConfig, MarketData, run_backtest
from hydraquant.policy import PolicyConfig

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
FILE = REAL / "binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2024-10-01_2024-11-04.csv.gz"
MIN = 60_000_000


def tiled_bars(n: int) -> dict[str, np.ndarray]:
    df = pl.read_csv(FILE)
    base = {k: df[k].to_numpy().astype(np.float64) for k in ("open", "high", "low", "close")}
    reps = -(-n // base["close"].size)
    out = {k: [] for k in base}
    scale = 1.0
    for _ in range(reps):
        for k, v in base.items():
            out[k].append(v * scale)
        scale *= base["close"][-1] / base["open"][0]
    bars = {k: np.concatenate(v)[:n] for k, v in out.items()}
    bars["ts"] = 1_704_067_200_000_000 + np.arange(n, dtype=np.int64) * MIN
    return bars


def sma_signals(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = pl.Series(c).rolling_mean(20).to_numpy()
    s = pl.Series(c).rolling_mean(50).to_numpy()
    valid = ~np.isnan(s)
    above = f > s
    pa = np.concatenate(([False], above[:-1]))
    pv = np.concatenate(([False], valid[:-1]))
    return above & ~pa & valid & pv, ~above & pa & valid & pv


def best_of(fn, repeat: int) -> tuple[float, object]:
    fn()  # compile / warm up
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--btpy-bars", type=int, default=100_000)
    ap.add_argument("--symbols", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    b = tiled_bars(args.bars)
    n = args.bars
    up, dn = sma_signals(b["close"])
    col = lambda x: x[:, None]
    market = MarketData(
        ts=b["ts"],
        symbols=("BTC",),
        open=col(b["open"]),
        high=col(b["high"]),
        low=col(b["low"]),
        close=col(b["close"]),
        p_long=col(up.astype(float)),
        p_short=np.zeros((n, 1)),
        p_exit=col(np.where(dn, 1.0, np.nan)),
        interval="1m",
    )
    pol = PolicyConfig.model_validate(
        {
            "entry": {
                "conf_threshold": 0.5,
                "min_prob_diff": 0.0,
                "allow_short": False,
                "max_positions": 1,
            },
            "exit": {
                "stop_mode": "pct",
                "sl_pct": 0.01,
                "tp_pct": 0.02,
                "exit_threshold": 0.5,
                "close_on_opposite": False,
                "stops_on_entry_bar": False,
                "stops_before_exits": True,
            },
            "sizing": {"mode": "fraction", "fraction": 1.0, "use_risk_multiplier": False},
        }
    )
    costs = CostConfig(maker_fee=0.0004, taker_fee=0.0004)
    t_ours, res = best_of(lambda: run_backtest(market, pol, costs), args.repeat)
    print(
        f"hydraquant SMA  {n:>9,} bars  {t_ours * 1e3:9.1f} ms  {n / t_ours / 1e6:7.2f} M bars/s  trades={res.trades.height}"
    )

    results = {"hydraquant_sma_s": t_ours}
    try:
        import pandas as pd
        import vectorbt as vbt

        idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
        ser = lambda x: pd.Series(x, index=idx)
        sh = lambda x: ser(np.concatenate(([False], x[:-1])))
        ent, ex = sh(up), sh(dn)
        o, h, lo, c = (ser(b[k]) for k in ("open", "high", "low", "close"))

        def run_vbt():
            pf = vbt.Portfolio.from_signals(
                close=c,
                entries=ent,
                exits=ex,
                price=o,
                open=o,
                high=h,
                low=lo,
                sl_stop=0.01,
                tp_stop=0.02,
                fees=0.0004,
                stop_entry_price="fillprice",
                init_cash=10_000.0,
                freq="1min",
            )
            return pf.trades.count()

        t_vbt, vcount = best_of(run_vbt, args.repeat)
        print(
            f"vectorbt        {n:>9,} bars  {t_vbt * 1e3:9.1f} ms  {n / t_vbt / 1e6:7.2f} M bars/s  trades={vcount}"
            f"  -> hydraquant {t_vbt / t_ours:5.1f}x faster"
        )
        results["vectorbt_s"] = t_vbt
    except ImportError as exc:
        print(f"vectorbt not installed ({exc}); skipped")

    try:
        import pandas as pd
        from backtesting import Backtest, Strategy

        m = args.btpy_bars
        frame = pd.DataFrame(
            {
                "Open": b["open"][:m],
                "High": b["high"][:m],
                "Low": b["low"][:m],
                "Close": b["close"][:m],
                "Volume": 1.0,
            },
            index=pd.date_range("2024-01-01", periods=m, freq="1min"),
        )
        sig_up, sig_dn = up[:m], dn[:m]

        class Sma(Strategy):
            def init(self):
                self.up = self.I(lambda: sig_up.astype(float), name="up")
                self.dn = self.I(lambda: sig_dn.astype(float), name="dn")

            def next(self):
                px = self.data.Close[-1]
                if not self.position and self.up[-1]:
                    self.buy(size=0.99, sl=px * 0.99, tp=px * 1.02)
                elif self.position and self.dn[-1]:
                    self.position.close()

        def run_btpy():
            bt = Backtest(frame, Sma, cash=10_000_000, commission=0.0004, exclusive_orders=False)
            return bt.run()["# Trades"]

        t0 = time.perf_counter()
        btcount = run_btpy()
        t_bt = time.perf_counter() - t0
        per_bar_ours = t_ours / n
        print(
            f"backtesting.py  {m:>9,} bars  {t_bt * 1e3:9.1f} ms  {m / t_bt / 1e6:7.3f} M bars/s  trades={btcount}"
            f"  -> hydraquant {t_bt / m / per_bar_ours:7.1f}x faster per bar"
        )
        results["backtesting_py_per_bar_s"] = t_bt / m
    except ImportError as exc:
        print(f"backtesting.py not installed ({exc}); skipped")

    # full policy: multi-symbol, Kelly sizing, confidence-scaled stops, trailing, partials, guards
    k = args.symbols
    rng = np.random.default_rng(7)
    shifts = rng.integers(0, n, k)
    stack = lambda key: np.stack([np.roll(b[key], s) for s in shifts], axis=1)
    O, H, L, C = (stack(x) for x in ("open", "high", "low", "close"))
    atr = pl.DataFrame(H - L).select(pl.all().rolling_mean(14)).to_numpy()
    pl_ = rng.uniform(0, 1, (n, k))
    ps = (1 - pl_) * rng.uniform(0, 1, (n, k))
    full = MarketData(
        ts=b["ts"],
        symbols=tuple(f"S{i}" for i in range(k)),
        open=O,
        high=H,
        low=L,
        close=C,
        atr=atr,
        adx=rng.uniform(5, 50, (n, k)),
        regime=rng.integers(0, 4, (n, k)).astype(float),
        p_long=pl_,
        p_short=ps,
        p_exit=rng.uniform(0, 1, (n, k)),
        risk_mult=rng.uniform(0, 1.5, (n, k)),
        interval="1m",
    )
    fpol = PolicyConfig.model_validate(
        {
            "entry": {
                "conf_threshold": 0.7,
                "min_prob_diff": 0.1,
                "adx_min": 15.0,
                "allowed_regimes": [0, 1, 2],
                "cooldown_bars": 5,
                "max_positions": 3,
            },
            "exit": {
                "confidence_scaling": True,
                "trailing": True,
                "partial_close": True,
                "min_bars_held": 4,
                "max_bars_held": 240,
                "exit_threshold": 0.98,
            },
            "sizing": {
                "mode": "kelly",
                "kelly_rmse": 0.05,
                "kelly_mult": 0.5,
                "leverage": 3.0,
                "lot_step": 0.001,
            },
            "guards": {
                "daily_loss_pct": 3.0,
                "weekly_drawdown_pct": 20.0,
                "max_consecutive_losses": 7,
                "equity_filter_trades": 10,
                "equity_filter_max_loss_pct": 5.0,
            },
        }
    )
    fcost = CostConfig(spread_bps=1.0, slippage_atr_frac=0.05, funding_rate=0.0001)
    t_full, fres = best_of(lambda: run_backtest(full, fpol, fcost), args.repeat)
    cells = n * k
    print(
        f"full policy     {n:>9,} bars x {k} symbols  {t_full * 1e3:9.1f} ms  {cells / t_full / 1e6:7.2f} M bar-symbols/s"
        f"  {n / t_full / 1e6:6.2f} M bars/s  trades={fres.trades.height}  closes={fres.close_types}"
    )
    from hydraquant.backtest.engine import calendar_indices, funding_events
    from hydraquant.backtest.engine_nb import simulate_nb
    from hydraquant.timeframes import interval_us

    arrs = [
        full.array(x)
        for x in (
            "open",
            "high",
            "low",
            "close",
            "atr",
            "adx",
            "regime",
            "p_long",
            "p_short",
            "p_flat",
            "p_exit",
            "p_score",
            "risk_mult",
            "funding_rate",
        )
    ]
    day, week = calendar_indices(full.ts, 0.0)
    ev = funding_events(full.ts, interval_us("8h"))
    cfg, carr = fpol.to_array(), fcost.to_array()
    t_k, _ = best_of(
        lambda: simulate_nb(cfg, carr, *arrs, ev, day, week, 10_000.0, 1 << 20), args.repeat
    )
    print(
        f"  kernel only   {cells / t_k / 1e6:7.2f} M bar-symbols/s  {n / t_k / 1e6:6.2f} M bars/s"
        f"  (wrapper+results overhead {1e3 * (t_full - t_k):.0f} ms)"
    )


if __name__ == "__main__":
    main()
