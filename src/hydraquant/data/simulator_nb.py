"""Numba kernels of the market simulator (see :mod:`hydraquant.data.simulator`).

Kept apart from the Python API (vectorbt's ``nb.py`` style) so the hot loops
are small, typed and compiled once (``cache=True``).  Every kernel that draws
random numbers takes an explicit ``seed`` and reseeds numba's generator first,
so a kernel call is a pure function of its arguments; kernels never run in
parallel, which keeps the stream order (and hence the output) deterministic.

Time inside the kernels is integer microseconds since the start of the day.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

US = 1_000_000


@njit(cache=True)
def market_day(
    seed: int,
    n_sec: int,
    regime0: int,
    ou0: float,
    p_leave: np.ndarray,
    p_next: np.ndarray,
    regime_switching: bool,
    ou_decay: float,
    ou_sd: float,
):
    """Market-wide latent state on a 1-second grid for one day.

    Returns (regime per second, log-vol OU factor per second, common news
    shock per second).  The regime is a Markov chain whose per-second leave
    probability is ``p_leave[state]`` and whose destination is drawn from row
    ``p_next[state]``; continuing from ``regime0``/``ou0`` makes days join
    seamlessly.
    """
    np.random.seed(seed)
    regime = np.empty(n_sec, np.int8)
    ou = np.empty(n_sec, np.float64)
    z = np.empty(n_sec, np.float64)
    state = regime0
    h = ou0
    innov = ou_sd * math.sqrt(1.0 - ou_decay * ou_decay)
    for k in range(n_sec):
        if regime_switching and np.random.random() < p_leave[state]:
            u = np.random.random()
            acc = 0.0
            nxt = state
            for j in range(p_next.shape[1]):
                acc += p_next[state, j]
                if u < acc:
                    nxt = j
                    break
            state = nxt
        h = ou_decay * h + innov * np.random.standard_normal()
        regime[k] = state
        ou[k] = h
        z[k] = np.random.standard_normal()
    return regime, ou, z


@njit(cache=True)
def _advance_drift(t, x, cur, drift, ch, head, j, carry_exp, carry_c, t_out, c_out, horizon_us):
    """Integrate the planted drift from ``cur`` to time ``t``, retiring every
    component (yesterday's carry-over or today's) that expires on the way.

    Returns the new (log-price, time, drift, carry head, today's head).
    """
    while True:
        if ch < carry_exp.shape[0] and carry_exp[ch] <= t:
            x += drift * (carry_exp[ch] - cur)
            cur = carry_exp[ch]
            drift -= carry_c[ch]
            ch += 1
        elif head < j and t_out[head] + horizon_us <= t:
            te = t_out[head] + horizon_us
            x += drift * (te - cur)
            cur = te
            drift -= c_out[head]
            head += 1
        else:
            break
    x += drift * (t - cur)
    return x, t, drift, ch, head


@njit(cache=True)
def symbol_day(
    seed: int,
    sigma: np.ndarray,
    rate: np.ndarray,
    common_z: np.ndarray,
    beta: float,
    impact_share: float,
    branching: float,
    excite0: float,
    x0: float,
    tick: float,
    lot: float,
    q_med: float,
    q_mean: float,
    size_sigma: float,
    tail_prob: float,
    tail_scale: float,
    tail_alpha: float,
    edge: float,
    horizon_us: int,
    carry_exp: np.ndarray,
    carry_c: np.ndarray,
):
    """Trades of one symbol-day.

    Per second ``k`` the log mid ``x`` receives a diffusion shock
    ``sigma[k] * sqrt(1 - impact_share) * (beta*common_z[k] + sqrt(1-beta^2)*eps)``;
    the number of trades is Poisson with a self-exciting intensity
    ``rate[k]*(1-branching) + branching*E`` (``E`` an EWMA of recent counts, so
    the mean rate stays ``rate``); each trade has an iid sign (buy/sell 50/50),
    a heavy-tailed size, prints at the ask (buy) or bid (sell) of a one-tick
    spread around the mid *after* moving the mid by the square-root impact
    ``lam * s * sqrt(q/q_mean)`` with ``lam = sigma*sqrt(impact_share/rate)``.

    Planted edge: each trade also owes a *delayed* impact
    ``kappa * s * sqrt(q/q_mean)``, ``kappa = edge*sigma*sqrt(3/rate)``, paid as a
    constant drift over the next ``horizon_us``.  Its conditional mean over
    ``(t, t+H]`` is exactly the triangular-weighted past flow that
    :func:`planted_signal_kernel` computes.

    ``carry_exp``/``carry_c`` are the still-running delayed impacts of the
    previous day (expiry time relative to this day's start, drift per us).

    Returns (t_us, price, qty, is_buyer_maker, n_sub, mid_at_second_start,
    excite_end, x_end, carry_exp_next, carry_c_next).
    """
    np.random.seed(seed)
    n_sec = sigma.shape[0]
    decay = 1.0 - math.exp(-1.0 / 5.0)
    counts = np.empty(n_sec, np.int64)
    e = excite0
    total = 0
    for k in range(n_sec):
        lam = rate[k] * (1.0 - branching) + branching * e
        n = np.random.poisson(lam) if lam > 0.0 else 0
        counts[k] = n
        total += n
        e += decay * (n - e)
    excite_end = e

    t_out = np.empty(total, np.int64)
    p_out = np.empty(total, np.float64)
    q_out = np.empty(total, np.float64)
    m_out = np.empty(total, np.bool_)
    sub_out = np.empty(total, np.int64)
    c_out = np.empty(total, np.float64)  # delayed-impact drift per us owed by each trade
    mid_sec = np.empty(n_sec, np.float64)

    x = x0
    cur = 0  # time (us) up to which the drift has been applied
    drift = 0.0  # current planted drift, log-price per us
    for i in range(carry_c.shape[0]):
        drift += carry_c[i]
    ch = 0  # head of the carried queue
    head = 0  # head of today's queue
    idio = math.sqrt(max(0.0, 1.0 - beta * beta))
    diff_scale = math.sqrt(max(0.0, 1.0 - impact_share))
    j = 0
    for k in range(n_sec):
        sec_start = k * US
        # advance the planted drift to the start of this second
        x, cur, drift, ch, head = _advance_drift(
            sec_start, x, cur, drift, ch, head, j, carry_exp, carry_c, t_out, c_out, horizon_us
        )
        mid_sec[k] = math.exp(x)
        sk = sigma[k]
        x += sk * diff_scale * (beta * common_z[k] + idio * np.random.standard_normal())
        n = counts[k]
        if n == 0:
            continue
        offs = np.sort(np.random.random(n))
        lam_imp = sk * math.sqrt(impact_share / rate[k]) if rate[k] > 0 else 0.0
        kappa = edge * sk * math.sqrt(3.0 / rate[k]) if rate[k] > 0 else 0.0
        for i in range(n):
            t = sec_start + int(offs[i] * US)
            x, cur, drift, ch, head = _advance_drift(
                t, x, cur, drift, ch, head, j, carry_exp, carry_c, t_out, c_out, horizon_us
            )
            # size: log-normal body with a Pareto tail
            if np.random.random() < tail_prob:
                q = q_med * tail_scale * np.random.random() ** (-1.0 / tail_alpha)
            else:
                q = q_med * math.exp(size_sigma * np.random.standard_normal())
            q = max(lot, round(q / lot) * lot)
            buy = np.random.random() < 0.5
            s = 1.0 if buy else -1.0
            f = s * math.sqrt(q / q_mean)
            # the order sweeps the book to its impacted level, so the print
            # already carries the impact (else the next print would be predictable)
            x += lam_imp * f
            bid = math.floor(math.exp(x) / tick)
            bid = max(bid, 1.0)
            p_out[j] = (bid + 1.0) * tick if buy else bid * tick
            t_out[j] = t
            q_out[j] = q
            m_out[j] = not buy
            sub_out[j] = 1 + np.random.poisson(0.4 + 0.6 * math.log1p(q / q_med))
            c = kappa * f / horizon_us
            c_out[j] = c
            drift += c
            j += 1

    # settle the drift to the end of the day and hand over what is still running
    end = n_sec * US
    x, cur, drift, ch, head = _advance_drift(
        end, x, cur, drift, ch, head, j, carry_exp, carry_c, t_out, c_out, horizon_us
    )
    n_carry = (carry_exp.shape[0] - ch) + (j - head)
    next_exp = np.empty(n_carry, np.int64)
    next_c = np.empty(n_carry, np.float64)
    m = 0
    for i in range(ch, carry_exp.shape[0]):
        next_exp[m] = carry_exp[i] - end
        next_c[m] = carry_c[i]
        m += 1
    for i in range(head, j):
        next_exp[m] = t_out[i] + horizon_us - end
        next_c[m] = c_out[i]
        m += 1
    return t_out, p_out, q_out, m_out, sub_out, mid_sec, excite_end, x, next_exp, next_c


@njit(cache=True)
def ar1_path(x0: float, psi: float, shocks: np.ndarray) -> np.ndarray:
    """``y[i] = psi*y[i-1] + shocks[i]`` with ``y[-1] = x0`` (deviation form)."""
    out = np.empty(shocks.shape[0], np.float64)
    y = x0
    for i in range(shocks.shape[0]):
        y = psi * y + shocks[i]
        out[i] = y
    return out


@njit(cache=True)
def planted_signal_kernel(
    t_us: np.ndarray, flow: np.ndarray, weight_sq: np.ndarray, at_us: np.ndarray, horizon_us: int
):
    """Triangular-weighted flow over trades with ``at - H < t < at``.

    ``w = 1 - (at - t)/H``.  Returns (sum flow*w, sum weight_sq*w^2) per
    decision time; ``at_us`` must be sorted.  Two pointers keep it
    O(n_trades + n_at * trades_per_window).
    """
    m = at_us.shape[0]
    num = np.zeros(m, np.float64)
    den = np.zeros(m, np.float64)
    lo = 0
    hi = 0
    n = t_us.shape[0]
    for i in range(m):
        a = at_us[i]
        while hi < n and t_us[hi] < a:
            hi += 1
        while lo < hi and t_us[lo] <= a - horizon_us:
            lo += 1
        s1 = 0.0
        s2 = 0.0
        for jj in range(lo, hi):
            w = 1.0 - (a - t_us[jj]) / horizon_us
            s1 += flow[jj] * w
            s2 += weight_sq[jj] * w * w
        num[i] = s1
        den[i] = s2
    return num, den
