"""Distribution-free confidence interval of a median from binomial order statistics."""

from __future__ import annotations

from collections.abc import Sequence


def ci_order(n: int, tail: float) -> int:
    """k such that the k-th and (n-k+1)-th smallest of n samples bound the median; 0 = no interval.

    k = scipy.stats.binom.ppf(tail, n, 0.5), tail = 0.025 for a 95% interval (coverage ≥ 95%).
    """
    return ci_orders([n], tail)[0]


def ci_orders(ns: Sequence[int], tail: float) -> list[int]:
    """ci_order for many sample counts in one vectorized scipy call (one call per cell costs
    ~0.1 ms each: seconds for a national month); scipy is imported here, lazily: it is heavy."""
    if not ns:
        return []
    import numpy as np

    counts = np.asarray(ns, dtype=np.int64)
    try:  # the ufunc binom.ppf evaluates for 0 < q < 1; scipy.stats itself takes ~1 s to import
        from scipy.special._ufuncs import _binom_ppf  # private: pyproject bounds scipy <1.18

        ks = _binom_ppf(tail, counts, 0.5)
    except ImportError:  # another scipy layout: the public way
        from scipy.stats import binom

        ks = binom.ppf(tail, counts, 0.5)
    return [int(k) if n > 0 else 0 for n, k in zip(ns, ks, strict=True)]


def pick(slice_values: Sequence[float], slice_start: int, position: int) -> float:
    """The `position`-th smallest (1-based) from a slice of the sorted samples starting there."""
    offset = position - slice_start
    if not 0 <= offset < len(slice_values):
        raise AssertionError(
            f"order statistic {position} is outside the slice [{slice_start}, "
            f"{slice_start + len(slice_values)}) returned by the store; widen CI_MARGIN in cells_sql"
        )
    return float(slice_values[offset])


def median_ci(
    n: int,
    tail: float,
    lo_slice: Sequence[float],
    lo_start: int,
    hi_slice: Sequence[float],
    hi_start: int,
    k: int | None = None,
) -> tuple[float | None, float | None]:
    """(low, high) of the median's interval from the two slices the cells query returns
    (k: ci_order(n, tail) when already known)."""
    if k is None:
        k = ci_order(n, tail)
    if k == 0:
        return None, None
    return pick(lo_slice, lo_start, k), pick(hi_slice, hi_start, n - k + 1)
