"""Small-area estimates of the median download of commune cells below `min_samples` (empirical Bayes).

For each network type, every commune cell (all ISPs, and each ISP) with at least one sample but
fewer than `min_samples` gets an estimate of its log-median download that borrows strength from
its province and its ISP mix (`docs/estimates-validation.md` gives the validation):

- samples x_j: the cell's device-day medians (Mbps); the direct estimate d = ln(median x_j), the
  figure the cell would publish;
- the province's ISP levels: b_rp = ln median of province r's samples on ISP p, shrunk towards
  ln median of r + (ln median of p nationally − ln median nationally) with the weight of K
  samples (b_rp = (n_rp·m_rp + K·prior) / (n_rp + K)), the province's own median shrunk to the
  national one likewise;
- the cell's prior mean μ = Σ_p w_p·b_rp + δ_t, w_p the share of the cell's samples on ISP p (an
  ISP's own cell: w = 1 on it), δ_t the effect of the commune's unit type t (ward, rural commune,
  island zone: the mean of d − Σ_p w_p·b_rp over the well-sampled cells of that type, shrunk when
  they are few);
- the sampling variance of d for n samples, v(n) = Var(Q(U)), U ~ Beta((n+1)/2, (n+1)/2), Q the
  quantile function of the pooled within-cell residuals (ln x_j − the cell's ln median, from the
  cells of that kind with ≥ RESIDUAL_MIN_SAMPLES samples): the variance of a sample median of n
  draws, for the distribution these cells actually have (no normality assumed);
- the between-cell variance τ² = mean over cells with ≥ TAU_MIN_SAMPLES samples of
  (d − μ)² − v(n) (method of moments, at least TAU2_FLOOR), per network type and kind;
- the estimate θ = μ + B·(d − μ), B = τ² / (τ² + v(n)), with variance g = B·v(n) + (1 − B)²·Var(μ);
  the 90 % interval θ ± 1.645·√g, all back in Mbps by exp;
- the effective sample size n / B (the samples a direct median would need for the same
  precision) gives the grade: A ≥ 100, B ≥ 30, C below.

Estimates are never ranked and never written into stats.csv: they go to `estimates.csv`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ispeed.aggregator.methodology import Methodology
from ispeed.aggregator.outputs import write_csv

ESTIMATES_VERSION = "1"  # of this estimator; written into estimates.csv
INTERVAL_LEVEL = 0.90
Z_INTERVAL = 1.6448536269514722  # standard normal 95th percentile: a central 90 % interval
PRIOR_WEIGHT = 30.0  # K: a province's (or province × ISP) median counts as this many samples of its prior
RESIDUAL_MIN_SAMPLES = 30  # cells whose residuals describe the within-cell spread
TAU_MIN_SAMPLES = 20  # cells that inform the between-cell variance
TYPE_PRIOR_CELLS = 5.0  # a unit type's effect counts as its cells' mean shrunk by m / (m + this)
OWN_SPREAD_WEIGHT = 30.0  # a cell's own v(n) weighs n / (n + this) against the pooled one
OWN_GRID = 401  # points of a cell's own quantile function
TAU2_FLOOR = 0.0025  # (5 % in log terms): no cell is assumed identical to its prior
GRADES = ((100.0, "A"), (30.0, "B"))  # effective samples at least → grade; below: C
QUANTILE_GRID = 2001  # points of the residuals' quantile function
Key = tuple[str, str]  # (province code, provider)

# estimates.csv: the contract's columns (issue #22), then what each estimate rests on, then the file-wide values
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "network_type",
    "level",
    "province_code",
    "commune_code",
    "provider",
    "samples",
    "estimate_mbps",
    "estimate_low_mbps",
    "estimate_high_mbps",
    "grade",
)
DETAIL_COLUMNS: tuple[str, ...] = ("effective_samples", "direct_median_mbps", "prior_mbps")


@dataclass(frozen=True)
class Estimate:
    """One cell's estimate (a row of estimates.csv)."""

    network_type: str
    level: str
    province_code: str
    commune_code: str
    provider: str
    samples: int
    estimate_mbps: float
    estimate_low_mbps: float
    estimate_high_mbps: float
    grade: str
    effective_samples: float
    direct_median_mbps: float
    prior_mbps: float

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ESTIMATE_COLUMNS + DETAIL_COLUMNS}


def grade_for(effective_samples: float) -> str:
    for floor, grade in GRADES:
        if effective_samples >= floor:
            return grade
    return "C"


def median_variance(residuals: np.ndarray, counts: np.ndarray, grid: int = QUANTILE_GRID) -> np.ndarray:
    """v(n) for each n in `counts`: the variance of the median of n draws from `residuals`' distribution.

    The median of n draws is Q(U) with U ~ Beta((n+1)/2, (n+1)/2) (exact for odd n; for even n it
    stands for the mean of the two middle draws); its variance is integrated over a grid of u.
    """
    ordered = np.sort(residuals)
    u = (np.arange(grid) + 0.5) / grid
    q = np.interp(u * (len(ordered) - 1), np.arange(len(ordered)), ordered)  # np.quantile's linear rule
    weights = np.stack([_beta_weights(int(k), grid) for k in counts])
    mean = weights @ q
    out: np.ndarray = np.maximum(weights @ (q * q) - mean * mean, 1e-12)
    return out


@lru_cache(maxsize=4096)
def _beta_weights(n: int, grid: int) -> np.ndarray:
    """Beta((n+1)/2, (n+1)/2) as normalised weights on the grid's midpoints."""
    u = (np.arange(grid) + 0.5) / grid
    log_pdf = (n - 1.0) / 2.0 * np.log(u * (1.0 - u))
    weights = np.exp(log_pdf - log_pdf.max())
    out: np.ndarray = weights / weights.sum()
    return out


@lru_cache(maxsize=8)
def _normal_median_variance(n: int) -> float:
    """v(n) for unit-variance normal residuals (used only when no cell has enough samples)."""
    return math.pi / (2.0 * n) if n > 2 else 1.0 / n


def _shrunk(median: pd.Series, size: pd.Series, prior: pd.Series | float) -> pd.Series:
    return (size * median + PRIOR_WEIGHT * prior) / (size + PRIOR_WEIGHT)


def _levels(samples: pd.DataFrame) -> tuple[dict[Key, float], dict[Key, float]]:
    """Province × ISP log levels b_rp (shrunk, see the module doc) and their variances."""
    y = samples["y"]
    national = float(np.median(y))
    by_isp = samples.groupby("provider")["y"].median()
    province = samples.groupby("province_code")["y"].agg(["median", "size"])
    province_level = _shrunk(province["median"], province["size"], national)
    cells = samples.groupby(["province_code", "provider"])["y"].agg(["median", "size"])
    keys = list(cells.index)
    prior = pd.Series([province_level[r] + by_isp[p] - national for r, p in keys], index=cells.index, dtype=float)
    levels = _shrunk(cells["median"], cells["size"], prior)
    spread = float(np.var(y - np.median(y))) if len(y) else 1.0
    var = {key: spread * _normal_median_variance(int(n) + int(PRIOR_WEIGHT)) for key, n in cells["size"].items()}
    return {key: float(v) for key, v in levels.items()}, var


def _priors(
    cells: pd.Index, mix: pd.Series, n: np.ndarray, by_isp: bool, levels: dict[Key, float], level_var: dict[Key, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's prior mean μ = Σ_p w_p·b_rp and its variance Σ_p w_p²·Var(b_rp)."""
    if by_isp:
        pairs = list(zip(cells.get_level_values(0), cells.get_level_values(2), strict=True))
        return np.array([levels[k] for k in pairs]), np.array([level_var[k] for k in pairs])
    shares = mix.unstack(fill_value=0).reindex(cells, fill_value=0)
    weights = shares.to_numpy(dtype=float) / n[:, None]
    provinces = cells.get_level_values(0)
    table = np.array([[levels.get((r, p), 0.0) for p in shares.columns] for r in provinces])
    table_var = np.array([[level_var.get((r, p), 0.0) for p in shares.columns] for r in provinces])
    return (weights * table).sum(axis=1), (weights * weights * table_var).sum(axis=1)


def _type_effects(
    cells: pd.Index, residual: np.ndarray, n: np.ndarray, unit_types: Mapping[str, str] | None
) -> np.ndarray:
    """Each cell's unit-type effect δ_t: the mean of (d − μ) over the cells of its type (ward,
    rural commune, island zone) with ≥ TAU_MIN_SAMPLES samples, shrunk by m / (m + TYPE_PRIOR_CELLS)
    for a type with m such cells; 0 without unit types."""
    if not unit_types:
        return np.zeros(len(cells))
    types = np.array([unit_types.get(code, "") for code in cells.get_level_values(1)], dtype=object)
    effect = np.zeros(len(cells))
    for kind in set(types.tolist()):
        of_kind = types == kind
        used = of_kind & (n >= TAU_MIN_SAMPLES)
        m = int(used.sum())
        if kind and m:
            effect[of_kind] = float(np.mean(residual[used])) * m / (m + TYPE_PRIOR_CELLS)
    return effect


def estimate_cells(
    samples: pd.DataFrame, network_type: str, min_samples: int, unit_types: Mapping[str, str] | None = None
) -> list[Estimate]:
    """Estimates for one network type's commune cells below `min_samples` (samples: rows of one
    network type, columns province_code, commune_code, provider, download_mbps; `unit_types`:
    commune code → ward / rural commune / island zone, admin_geo's `type`)."""
    samples = samples[samples["download_mbps"] > 0]
    if samples.empty:
        return []
    samples = samples.assign(y=np.log(samples["download_mbps"].to_numpy(dtype=float)))
    levels, level_var = _levels(samples)
    placed = samples[samples["commune_code"] != ""]
    out: list[Estimate] = []
    for by_isp in (False, True) if not placed.empty else ():
        keys = ["province_code", "commune_code"] + (["provider"] if by_isp else [])
        grouped = placed.groupby(keys, sort=True)
        sizes = grouped.size()
        cells, n = sizes.index, sizes.to_numpy()
        direct = np.log(grouped["download_mbps"].median().to_numpy())
        mix = sizes if by_isp else placed.groupby(keys + ["provider"]).size()
        prior, prior_var = _priors(cells, mix, n, by_isp, levels, level_var)
        prior = prior + _type_effects(cells, direct - prior, n, unit_types)
        centred = placed["y"].to_numpy() - grouped["y"].transform("median").to_numpy()
        residuals = centred[grouped["y"].transform("size").to_numpy() >= RESIDUAL_MIN_SAMPLES]
        own = [centred[i] for i in grouped.indices.values()]  # each cell's samples minus its median
        v = _sampling_variance(residuals, n, samples["y"].to_numpy(), own)
        tau2, tau2_var = _between_variance(direct, prior, v, n)
        shrink = tau2 / (tau2 + v)
        theta = prior + shrink * (direct - prior)
        # Prasad-Rao: the posterior variance, the prior mean's, and τ²'s own estimation error
        g3 = v * v / (tau2 + v) ** 3 * tau2_var
        half = Z_INTERVAL * np.sqrt(shrink * v + (1.0 - shrink) ** 2 * prior_var + 2.0 * g3)
        effective = n / shrink
        keys_list = cells.tolist()
        for i in np.flatnonzero(n < min_samples):
            key = keys_list[i]
            out.append(
                Estimate(
                    network_type=network_type,
                    level="commune",
                    province_code=str(key[0]),
                    commune_code=str(key[1]),
                    provider=str(key[2]) if by_isp else "",
                    samples=int(n[i]),
                    estimate_mbps=round(float(np.exp(theta[i])), 3),
                    estimate_low_mbps=round(float(np.exp(theta[i] - half[i])), 3),
                    estimate_high_mbps=round(float(np.exp(theta[i] + half[i])), 3),
                    grade=grade_for(float(effective[i])),
                    effective_samples=round(float(effective[i]), 1),
                    direct_median_mbps=round(float(np.exp(direct[i])), 3),
                    prior_mbps=round(float(np.exp(prior[i])), 3),
                )
            )
    out.sort(key=lambda e: (e.province_code, e.commune_code, e.provider))
    return out


def _sampling_variance(residuals: np.ndarray, n: np.ndarray, y: np.ndarray, cells: Sequence[np.ndarray]) -> np.ndarray:
    """v(n) per cell: the pooled residuals' v(n) blended with the cell's own, n / (n + OWN_SPREAD_WEIGHT)
    of the latter (a cell's median may sit where its own samples are sparse — between two plan
    speeds — which the pooled residuals average away; its own samples tell that only when they
    are many); a normal approximation with the month's overall spread when too few cells are
    well sampled."""
    if len(residuals) < 200:
        spread = float(np.var(y - np.median(y))) if len(y) > 1 else 1.0
        return np.array([spread * _normal_median_variance(int(k)) for k in n])
    distinct, inverse = np.unique(n, return_inverse=True)
    pooled = median_variance(residuals, distinct)[inverse]
    own = np.array([median_variance(c, np.array([len(c)]), OWN_GRID)[0] for c in cells])
    weight = n / (n + OWN_SPREAD_WEIGHT)
    out: np.ndarray = weight * own + (1.0 - weight) * pooled
    return out


def _between_variance(direct: np.ndarray, prior: np.ndarray, v: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """τ² by the method of moments over the cells with ≥ TAU_MIN_SAMPLES samples (all cells
    when fewer than ten have that many), never below TAU2_FLOOR; and its variance,
    2·Σ(τ² + v_i)² / m² over those m cells."""
    use = n >= TAU_MIN_SAMPLES
    if use.sum() < 10:
        use = n >= 1
    excess = (direct[use] - prior[use]) ** 2 - v[use]
    if not excess.size:
        return TAU2_FLOOR, TAU2_FLOOR**2
    tau2 = max(TAU2_FLOOR, float(np.mean(excess)))
    return tau2, 2.0 * float(np.sum((tau2 + v[use]) ** 2)) / excess.size**2


def unit_types() -> dict[str, str]:
    """Commune code → admin_geo's unit type (phuong, xa, dac_khu)."""
    from ispeed.admin_geo import communes

    return {c.code: c.type for c in communes()}


def estimate_month(samples: pd.DataFrame, method: Methodology) -> list[Estimate]:
    """Every network type's estimates, in the methodology's network-type order."""
    out: list[Estimate] = []
    types = unit_types()
    for network_type in method.network_types:
        rows = samples[samples["network_type"] == network_type]
        out.extend(estimate_cells(rows, network_type, method.min_samples, types))
    return out


def method_values(method: Methodology) -> dict[str, object]:
    """The file-wide columns of estimates.csv."""
    return {
        "estimates_version": ESTIMATES_VERSION,
        "interval_level": INTERVAL_LEVEL,
        "min_samples": method.min_samples,
        "include_simulated": method.include_simulated,
    }


def write_estimates(out_dir: Path, month: str, estimates: Sequence[Estimate], method: Methodology) -> Path:
    """DIR/YYYY-MM/estimates.csv: the contract columns, the file-wide values, then the details."""
    target = out_dir / month
    target.mkdir(parents=True, exist_ok=True)
    path = target / "estimates.csv"
    write_csv(path, ESTIMATE_COLUMNS, (e.row() for e in estimates), method_values(method), DETAIL_COLUMNS)
    return path
