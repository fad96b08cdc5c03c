"""Thresholds for the drift detectors, from their in-control average run length (ARL0).

Pure numerics (numpy/scipy), no I/O: ``core/monitoring/drift.py`` calls these when a metric's
reference window completes and stores the result in its state, so a restored monitor never
recomputes a threshold.

A detector's long-run false-alarm rate on clean calls is ``1 / ARL0`` when it restarts from
zero after each (acknowledged) alarm. Each threshold is solved for a target rate, a share of
the monitor's budget, with the reference window's estimation error integrated out:

* Mean CUSUM (continuous metrics, standardised by the reference mean and sd): the ARL of a
  one-sided CUSUM ``S = max(0, S + z - k)`` on ``z ~ N(mu, sd^2)`` is computed with the
  Brook-Evans Markov chain (``CHAIN_STATES`` cells). With a reference of ``n`` normal calls
  the standardised clean value is ``z ~ N(-u / v, 1 / v^2)`` with ``u ~ N(0, 1/n)`` and
  ``(n - 1) v^2 ~ chi2(n - 1)``; the expected rate ``E[1 / ARL(h | u, v)]`` is integrated by
  Gauss-Hermite quadrature over u and over v (through the Wilson-Hilferty
  normal approximation of chi2). The result depends only
  on ``(n, k, rate)``: location-scale invariance.
* Bernoulli log-likelihood-ratio CUSUM (``p0 -> p1`` on the bad outcome): the chain is exact
  on a lattice whose step divides the "good call" decrement (the bad-call increment is
  rounded to the lattice, < 0.5% of it). The reference gives ``k`` bad outcomes in ``n``
  calls; the true rate is integrated over its Jeffreys posterior ``Beta(k + 1/2, n - k + 1/2)``
  by Gauss-Hermite quadrature through
  the probability integral transform, so a reference that happened to see few bad calls does not buy
  a trigger-happy detector.

The threshold is found by a secant search on ``log(rate)``, nearly linear in ``h``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy.linalg import solve_banded
from scipy.special import ndtr

CHAIN_STATES = 100
BERNOULLI_LATTICE = 600
_HERMITE_NODES = 12
_CHI_NODES = 12
_POSTERIOR_NODES = 16


def mean_cusum_arl(h: float, k: float, mu: float = 0.0, sd: float = 1.0) -> float:
    """ARL of ``S = max(0, S + z - k)``, alarm at ``S >= h``, ``z ~ N(mu, sd^2)``, from 0."""
    t = CHAIN_STATES
    w = 2.0 * h / (2 * t - 1)
    pos = np.arange(t) * w
    # From position i*w, land in cell j (j >= 1) when the new S is in ((j - .5) w, (j + .5) w].
    edges = (np.arange(t) + 0.5) * w  # upper edges of cells 0..t-1; the last one is h
    cdf = ndtr((edges[None, :] - pos[:, None] + k - mu) / sd)
    trans = np.empty((t, t))
    trans[:, 0] = cdf[:, 0]
    trans[:, 1:] = np.diff(cdf, axis=1)
    arl = np.linalg.solve(np.eye(t) - trans, np.ones(t))
    return float(arl[0])


def _lattice(down: float, rate: float) -> float:
    """The lattice step for a Bernoulli CUSUM: divides ``down``, ~BERNOULLI_LATTICE steps to
    a threshold of ``log(1 / rate)``."""
    return down / max(1, round(BERNOULLI_LATTICE * down / math.log(1.0 / rate)))


def bernoulli_cusum_arl(m: int, w: float, up: float, down: float, p_bad: float) -> float:
    """ARL of ``S = max(0, S + up)`` on a bad call, ``max(0, S - down)`` on a good one, alarm at
    ``S >= m * w``, on the lattice of step ``w`` (``down / w`` an integer; ``up`` rounded)."""
    r = max(1, round(down / w))
    a = max(1, round(up / w))
    # (I - P) L = 1 as a banded system: lower bandwidth r (a good call), upper a (a bad one).
    ab = np.zeros((a + r + 1, m))
    ab[a, :] = 1.0
    ab[a, 0] -= 1.0 - p_bad  # a good call at 0 stays at 0
    idx = np.arange(1, m)
    good_to = np.maximum(idx - r, 0)
    ab[a + idx - good_to, good_to] -= 1.0 - p_bad
    if a < m:
        ab[0, a:] -= p_bad  # row i = column - a: a bad call moves up by a
    arl = solve_banded((r, a), ab, np.ones(m))
    return float(arl[0])


def _solve(rate_at: Callable[[float], float], target: float, h0: float) -> float:
    """Secant search for ``rate_at(h) == target`` on log scale; ``rate_at`` decreasing in h."""
    f = rate_at
    lt = math.log(target)
    h1, h2 = h0, h0 * 1.15 + 0.5
    g1 = math.log(f(h1)) - lt
    g2 = math.log(f(h2)) - lt
    for _ in range(40):
        if abs(g2) < 1e-3:
            break
        slope = (g2 - g1) / (h2 - h1) if h2 != h1 else -1.0
        if slope >= 0:
            slope = -1.0
        h3 = max(h2 - g2 / slope, 0.5 * h2)
        h1, g1 = h2, g2
        h2 = h3
        g2 = math.log(f(h2)) - lt
    return h2


def _siegmund_h(k: float, arl: float) -> float:
    """Siegmund's approximation inverted for a known-parameter normal CUSUM (a start point)."""
    lo, hi = 0.1, 200.0
    for _ in range(80):
        mid = (lo + hi) / 2
        b = mid + 1.166
        val = (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)
        lo, hi = (mid, hi) if val < arl else (lo, mid)
    return (lo + hi) / 2


@lru_cache(maxsize=64)
def mean_cusum_threshold(k: float, rate: float, reference_n: int | None) -> float:
    """h with expected false-alarm rate ``rate`` per call; ``reference_n=None``: known mean/sd."""
    if reference_n is None:
        return _solve(lambda h: 1.0 / mean_cusum_arl(h, k), rate, _siegmund_h(k, 1 / rate))
    n = reference_n
    x, wx = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    wx = wx / wx.sum()
    # (n - 1) v^2 ~ chi2(n - 1), by the Wilson-Hilferty cube: v^2 = (1 - c + z sqrt(c))^3.
    y, wy = np.polynomial.hermite_e.hermegauss(_CHI_NODES)
    wy = wy / wy.sum()
    c = 2.0 / (9.0 * (n - 1))
    us = x / math.sqrt(n)
    vs = np.clip(1.0 - c + y * math.sqrt(c), 1e-3, None) ** 1.5

    def rate_at(h: float) -> float:
        total = 0.0
        for u, pu in zip(us, wx, strict=True):
            for v, pv in zip(vs, wy, strict=True):
                total += pu * pv / mean_cusum_arl(h, k, -u / v, 1.0 / v)
        return total

    return _solve(rate_at, rate, _siegmund_h(k, 1 / rate))


def llr_steps(p0: float, p1: float) -> tuple[float, float]:
    """(increment on a bad call, decrement on a good call) of the p0 -> p1 LLR CUSUM."""
    return math.log(p1 / p0), math.log((1 - p0) / (1 - p1))


@lru_cache(maxsize=4096)
def bernoulli_cusum_threshold(p0: float, p1: float, rate: float, reference_n: int | None) -> float:
    """h for the LLR CUSUM designed for ``p0 -> p1`` with expected false-alarm rate ``rate``.

    With ``reference_n`` the rate is averaged over the posterior ``Beta(p0 (n + 1),
    (1 - p0) (n + 1))`` of the true bad rate (the Jeffreys posterior when ``p0`` is the
    reference's ``(bad + 1/2) / (n + 1)``); with None the true rate is ``p0``."""
    up, down = llr_steps(p0, p1)
    if reference_n is not None:
        from scipy.stats import beta as beta_dist  # ~45 MB of imports: only where calibrated

        a, b = p0 * (reference_n + 1), (1.0 - p0) * (reference_n + 1)
        xs, ws = np.polynomial.hermite_e.hermegauss(_POSTERIOR_NODES)
        qs = beta_dist.ppf(ndtr(xs), a, b)
        ws = ws / ws.sum()
    else:
        qs, ws = np.array([p0]), np.array([1.0])
    w = _lattice(down, rate)

    def rate_at(m: int) -> float:
        return float(
            sum(pw / bernoulli_cusum_arl(m, w, up, down, q) for q, pw in zip(qs, ws, strict=True))
        )

    # The smallest lattice threshold whose rate is within the target: a bisection on integers.
    lo, hi = 1, max(2, round(math.log(1.0 / rate) / w))
    while rate_at(hi) > rate:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if rate_at(mid) > rate else (lo, mid)
    return hi * w
