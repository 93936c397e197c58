"""The statistics module against published values."""

from __future__ import annotations

import math

import pytest

from live.analytics import stats


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe(k: int, n: int, lo: float, hi: float) -> None:
    got = stats.wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=5e-5)
    assert got[1] == pytest.approx(hi, abs=5e-5)


def test_wilson_edges() -> None:
    assert stats.wilson(0, 0) == (0.0, 1.0)
    lo, hi = stats.wilson(10, 10)
    assert hi == 1.0 and 0.69 < lo < 0.73
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


def test_two_proportion_z_known_value() -> None:
    # 60/100 against 45/100: pooled p = 0.525, se = sqrt(.525*.475*.02) = 0.0706236…, z = 2.12393
    t = stats.two_proportion_z(60, 100, 45, 100)
    assert t is not None
    assert t.z == pytest.approx(2.12393, abs=1e-4)
    assert t.p_value == pytest.approx(0.03367, abs=1e-4)
    assert t.significant()
    same = stats.two_proportion_z(5, 50, 5, 50)
    assert same is not None and same.z == 0 and not same.significant()
    assert stats.two_proportion_z(1, 0, 1, 10) is None
    assert stats.two_proportion_z(0, 10, 0, 10) is not None  # no successes: z 0, p 1


def test_normal_cdf() -> None:
    assert stats.normal_cdf(0) == 0.5
    assert stats.normal_cdf(1.959963984540054) == pytest.approx(0.975, abs=1e-9)


ANSCOMBE_X = [10, 8, 13, 9, 11, 14, 6, 4, 12, 7, 5]
ANSCOMBE_Y1 = [8.04, 6.95, 7.58, 8.81, 8.33, 9.96, 7.24, 4.26, 10.84, 4.82, 5.68]


def test_pearson_anscombe() -> None:
    r = stats.pearson(ANSCOMBE_X, ANSCOMBE_Y1)
    assert r == pytest.approx(0.81642, abs=1e-5)


def test_spearman_wikipedia_example() -> None:
    iq = [106, 100, 86, 101, 99, 103, 97, 113, 112, 110]
    tv = [7, 27, 2, 50, 28, 29, 20, 12, 6, 17]
    assert stats.spearman(iq, tv) == pytest.approx(-29 / 165, abs=1e-12)


def test_ranks_average_ties() -> None:
    assert stats.ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    # with ties, rho is Pearson of the ranks: a monotone relation is still exactly 1
    assert stats.spearman([1, 2, 2, 3], [10, 20, 20, 40]) == pytest.approx(1.0)


def test_correlation_degenerate() -> None:
    assert stats.pearson([1, 2], [3, 4]) is None
    assert stats.pearson([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError):
        stats.pearson([1, 2, 3], [1, 2])


def test_fisher_interval_and_p_value() -> None:
    lo, hi = stats.fisher_ci(0.5, 28) or (0, 0)
    # atanh(.5) = .549306; se = 1/5; z-interval .157314…, .941299 → tanh
    assert lo == pytest.approx(math.tanh(0.549306 - 1.959964 / 5), abs=1e-5)
    assert hi == pytest.approx(math.tanh(0.549306 + 1.959964 / 5), abs=1e-5)
    assert stats.fisher_ci(0.5, 3) is None
    p = stats.correlation_p_value(0.5, 28)
    assert p == pytest.approx(2 * (1 - stats.normal_cdf(0.549306 * 5)), abs=1e-6)
