"""The study's statistics (``ultralytics_triplet.study.stats``): Student's t, paired t-intervals and tests, Holm, and
how far from detectable a comparison is (power, detectable difference, seeds needed)."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from ultralytics_triplet.study.stats import (
    POWER,
    detectable_difference,
    holm,
    log_ratio_interval,
    mean_interval,
    paired_interval,
    power,
    seeds_needed,
    t_quantile,
    t_test_p,
)

pytestmark = pytest.mark.compat


@pytest.mark.parametrize("df, expected", [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)])
def test_t_quantile_matches_the_published_table(df, expected):
    """Two-sided 95% critical values of Student's t (any statistics textbook's table)."""
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(0.025, df) == pytest.approx(-expected, abs=1e-4)


def test_t_quantile_approaches_the_normal_quantile():
    assert t_quantile(0.95, 5) == pytest.approx(2.0150, abs=1e-4)
    assert t_quantile(0.975, 100000) == pytest.approx(1.95996, abs=1e-4)
    assert t_quantile(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_paired_interval_is_the_t_interval_of_the_differences():
    plain = [0.50, 0.60, 0.70]
    small = paired_interval(plain, [0.52, 0.63, 0.71])  # differences 0.02, 0.03, 0.01
    half = 4.302653 * 0.01 / math.sqrt(3)
    assert small.n == 3 and small.mean == pytest.approx(0.02) and small.sd == pytest.approx(0.01)
    assert (small.lo, small.hi) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert small.lo < 0 < small.hi
    assert paired_interval(plain, [0.60, 0.71, 0.82]).lo > 0
    assert paired_interval(plain, [0.40, 0.49, 0.58]).hi < 0
    one = paired_interval([0.5], [0.6])
    assert one.n == 1 and one.mean == pytest.approx(0.1) and math.isnan(one.lo) and math.isnan(one.hi)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([0.5, 0.6], [0.5])


def test_latency_ratios_are_paired_by_round_in_logs_and_agree_between_pairs():
    plain, a, b = [5.0, 5.5, 4.8, 6.0], [6.0, 6.5, 5.9, 7.1], [10.0, 11.5, 9.4, 12.2]
    d = log_ratio_interval(plain, a)
    assert d == mean_interval([math.log(y / x) for x, y in zip(plain, a)])
    assert math.exp(d.mean) == pytest.approx(math.prod(y / x for x, y in zip(plain, a)) ** 0.25)  # geometric mean
    assert d.lo < d.mean < d.hi
    assert log_ratio_interval(a, b).mean == pytest.approx(log_ratio_interval(plain, b).mean - d.mean)
    assert math.isnan(log_ratio_interval([5.0], [6.0]).lo)  # one round: no interval
    with pytest.raises(ValueError, match="equal lengths"):
        log_ratio_interval(plain, a[:3])


@pytest.mark.parametrize("diffs, expected", [
    ([0.02, 0.03, 0.01], 0.074180),  # df 2
    ([0.1, -0.1, 0.05, 0.02], 0.708164),  # df 3
    ([0.3, 0.31], 0.010435),  # df 1
])
def test_the_paired_t_test_matches_a_published_implementation(diffs, expected):
    """p-values as scipy.stats.ttest_1samp(diffs, 0).pvalue gives them (computed there, written here)."""
    assert t_test_p(mean_interval(diffs)) == pytest.approx(expected, abs=2e-5)
    assert t_test_p(mean_interval([0.1, 0.1])) == 0.0 and t_test_p(mean_interval([0.0, 0.0])) == 1.0
    assert math.isnan(t_test_p(mean_interval([0.1])))


def test_holm_multiplies_the_sorted_p_values_and_keeps_them_monotone():
    # m = 3, sorted: 0.01 * 3 = 0.03; 0.03 * 2 = 0.06; 0.04 * 1 = 0.04 -> kept at 0.06 (never below the one before)
    assert holm([0.01, 0.03, 0.04]) == [pytest.approx(0.03), pytest.approx(0.06), pytest.approx(0.06)]
    assert holm([0.04, 0.01, 0.03]) == [pytest.approx(0.06), pytest.approx(0.03), pytest.approx(0.06)]
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    adjusted = holm([0.01, math.nan, 0.02])  # a comparison without a test counts in no m
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([]) == []


def reference_power(difference: float, sd: float, n: int, alpha: float) -> float:
    """The two-sided paired t-test's power from scipy's noncentral t distribution."""
    df, ncp = n - 1, difference * math.sqrt(n) / sd
    crit = scipy_stats.t.ppf(1 - alpha / 2, df)
    return float(scipy_stats.nct.sf(crit, df, ncp) + scipy_stats.nct.cdf(-crit, df, ncp))


@pytest.mark.parametrize("n", [2, 3, 5, 12, 30])
@pytest.mark.parametrize("difference", [0.002, 0.005, 0.01])
@pytest.mark.parametrize("alpha", [0.05, 0.05 / 4])
def test_power_is_the_paired_t_tests_power(n, difference, alpha):
    assert power(difference, 0.01, n, alpha) == pytest.approx(reference_power(difference, 0.01, n, alpha), abs=2e-4)


def test_power_is_the_level_at_no_difference_and_symmetric():
    assert power(0.0, 0.01, 5) == pytest.approx(0.05, abs=1e-4)
    assert power(-0.01, 0.01, 5) == pytest.approx(power(0.01, 0.01, 5))


@pytest.mark.parametrize("n", [2, 3, 8])
def test_the_detectable_difference_is_detected_with_the_stated_power(n):
    d = detectable_difference(0.01, n)
    assert power(d, 0.01, n) == pytest.approx(POWER, abs=1e-3)  # power() is checked against scipy above
    assert detectable_difference(0.01, n + 1) < d  # more seeds detect less
    assert detectable_difference(0.01, n, alpha=0.05 / 3) > d  # a stricter (Holm) level needs more


def test_seeds_needed_is_the_fewest_that_reach_the_power():
    n = seeds_needed(0.01, 0.02)
    assert reference_power(0.01, 0.02, n, 0.05) >= POWER > reference_power(0.01, 0.02, n - 1, 0.05)
    assert seeds_needed(0.01, 0.02, alpha=0.05 / 3) > n


def test_undefined_and_degenerate_spreads_say_so():
    assert math.isnan(detectable_difference(math.nan, 3)) and math.isnan(detectable_difference(0.01, 1))
    assert detectable_difference(0.0, 3) == 0.0
    assert seeds_needed(0.01, math.nan) is None
    assert seeds_needed(0.01, 0.0) == 2
    assert seeds_needed(1e-6, 0.05) is None  # beyond any practical number of seeds
    with pytest.raises(ValueError, match="n >= 2"):
        power(0.01, 0.01, 1)
