"""The few statistics the reports need, in plain Python (no SciPy).

* :func:`wilson` — the Wilson score interval of a proportion (Wilson 1927; Newcombe 1998).
* :func:`two_proportion_z` — the pooled two-proportion z-test, two-sided p-value.
* :func:`pearson`, :func:`spearman` (average ranks for ties), :func:`fisher_ci` for a correlation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes / n``; ``(0, 1)`` when ``n`` is 0."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


@dataclass(frozen=True)
class ZTest:
    p1: float
    p2: float
    diff: float  # p1 - p2
    z: float
    p_value: float  # two-sided

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> ZTest | None:
    """Pooled two-proportion z-test of ``k1/n1`` against ``k2/n2``; ``None`` if undefined."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return ZTest(p1, p2, p1 - p2, 0.0, 1.0)
    z = (p1 - p2) / se
    return ZTest(p1, p2, p1 - p2, z, min(1.0, 2 * (1 - normal_cdf(abs(z)))))


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r; ``None`` with fewer than 3 points or a constant series."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("series differ in length")
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1
        for k in range(i, j + 1):
            out[order[k]] = avg
        i = j + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the ranks (exact with ties)."""
    if len(xs) != len(ys):
        raise ValueError("series differ in length")
    return pearson(ranks(xs), ranks(ys))


def fisher_ci(r: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Approximate confidence interval of a correlation by Fisher's z transform (n > 3)."""
    if n <= 3:
        return None
    if abs(r) >= 1:
        return (r, r)
    fz = math.atanh(r)
    se = 1 / math.sqrt(n - 3)
    return (math.tanh(fz - z * se), math.tanh(fz + z * se))


def correlation_p_value(r: float, n: int) -> float | None:
    """Two-sided p-value of ``r`` against 0 by Fisher's z (normal approximation, n > 3)."""
    if n <= 3:
        return None
    if abs(r) >= 1:
        return 0.0
    return min(1.0, 2 * (1 - normal_cdf(abs(math.atanh(r)) * math.sqrt(n - 3))))
