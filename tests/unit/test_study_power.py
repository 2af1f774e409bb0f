"""How far from detectable: the power of the paired t-test, the smallest detectable difference, the seeds needed."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from ultralytics_triplet.study.stats import POWER, detectable_difference, power, seeds_needed

pytestmark = pytest.mark.compat


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
