"""S4 account guards: daily loss, weekly drawdown, loss-streak breaker, equity-curve filter.

Why the daily limit is a % of *current* equity recomputed every bar (seed
004 §16.1): a fixed USD limit is too loose after losses and too tight after
growth.  The equity-curve filter (§16.2) would otherwise block forever (no
new trades, no new evidence), so when it fires it pauses for a fixed number
of bars and clears its window; the breaker likewise resets its streak.
"""

from __future__ import annotations

from numba import njit

from hydraquant.policy import state as S


@njit(cache=True, nogil=True)
def guard_on_bar(cfg, g, equity: float, day: int, week: int, bar: int) -> tuple[bool, bool]:
    """Update day/week anchors with the equity at this bar close -> (entries_allowed, close_all).

    The day (week) starts with the equity at the previous close; the daily
    guard blocks new entries for the rest of the day once the day's P&L is
    <= -daily_loss_pct % of current equity; the weekly guard blocks for the
    rest of the week once equity is weekly_drawdown_pct % below the week's peak.
    """
    if day != g[S.G_DAY]:
        g[S.G_DAY] = day
        g[S.G_DAY_START_EQ] = g[S.G_LAST_EQ]
        g[S.G_DAY_BLOCK] = 0.0
    if week != g[S.G_WEEK]:
        g[S.G_WEEK] = week
        g[S.G_WEEK_PEAK] = g[S.G_LAST_EQ]
        g[S.G_WEEK_BLOCK] = 0.0
    g[S.G_WEEK_PEAK] = max(g[S.G_WEEK_PEAK], equity)
    g[S.G_LAST_EQ] = equity

    dl = cfg[S.CFG_DAILY_LOSS_PCT]
    if (
        dl > 0.0
        and g[S.G_DAY_BLOCK] == 0.0
        and equity - g[S.G_DAY_START_EQ] <= -equity * dl / 100.0
    ):
        g[S.G_DAY_BLOCK] = 1.0
        g[S.G_TRIGGERS] += 1.0
    wd = cfg[S.CFG_WEEKLY_DD_PCT]
    if wd > 0.0 and g[S.G_WEEK_BLOCK] == 0.0:
        peak = g[S.G_WEEK_PEAK]
        if peak > 0.0 and (peak - equity) / peak * 100.0 >= wd:
            g[S.G_WEEK_BLOCK] = 1.0
            g[S.G_TRIGGERS] += 1.0

    kill = cfg[S.CFG_KILL_SWITCH] != 0.0
    breach = g[S.G_DAY_BLOCK] != 0.0 or g[S.G_WEEK_BLOCK] != 0.0
    allowed = not (kill or breach or cfg[S.CFG_PAUSED] != 0.0 or bar < g[S.G_PAUSE_UNTIL])
    close_all = kill or (breach and cfg[S.CFG_GUARD_CLOSE_POSITIONS] != 0.0)
    return allowed, close_all


@njit(cache=True, nogil=True)
def guard_on_trade(cfg, g, pnl: float, equity: float, bar: int) -> None:
    """Record one finished position's net P&L (partials included) closed during ``bar``.

    Losing streak >= max_consecutive_losses pauses entries for
    breaker_pause_bars decisions (bars ``bar`` .. ``bar + k - 1``) and resets
    the streak.  Net P&L over the last N trades <= -max_loss_pct % of equity
    pauses for equity_filter_pause_bars and clears the window.
    """
    if pnl < 0.0:
        g[S.G_CONSEC] += 1.0
    else:
        g[S.G_CONSEC] = 0.0
    n_cb = cfg[S.CFG_MAX_CONSEC_LOSSES]
    if n_cb > 0.0 and g[S.G_CONSEC] >= n_cb:
        g[S.G_PAUSE_UNTIL] = max(g[S.G_PAUSE_UNTIL], bar + cfg[S.CFG_CB_PAUSE_BARS])
        g[S.G_CONSEC] = 0.0
        g[S.G_TRIGGERS] += 1.0

    n = int(cfg[S.CFG_EC_LOOKBACK])
    if n <= 0:
        return
    cap = g.shape[0] - S.N_GUARD_HEAD
    n = min(n, cap)
    pos = int(g[S.G_EC_POS])
    g[S.N_GUARD_HEAD + pos] = pnl
    g[S.G_EC_POS] = (pos + 1) % n
    if g[S.G_EC_COUNT] < n:
        g[S.G_EC_COUNT] += 1.0
    if g[S.G_EC_COUNT] >= n:
        total = 0.0
        for k in range(n):
            total += g[S.N_GUARD_HEAD + k]
        if total <= -equity * cfg[S.CFG_EC_MAX_LOSS_PCT] / 100.0:
            g[S.G_PAUSE_UNTIL] = max(g[S.G_PAUSE_UNTIL], bar + cfg[S.CFG_EC_PAUSE_BARS])
            g[S.G_EC_COUNT] = 0.0
            g[S.G_EC_POS] = 0.0
            for k in range(n):
                g[S.N_GUARD_HEAD + k] = 0.0
            g[S.G_TRIGGERS] += 1.0
