"""ispeed simulate: reproducible by seed, realistic shape, marked simulated, into both stores."""

from __future__ import annotations

import numpy as np
import pytest

from ispeed.aggregator.places import builtin_places, load_places
from ispeed.aggregator.simulate import SimulationConfig, generate, simulate
from ispeed.cli.main import main
from ispeed.core.store import Store


def _all(cfg: SimulationConfig) -> dict[str, np.ndarray]:
    chunks = list(generate(cfg, load_places()))
    return {k: np.concatenate([np.asarray(c[k], dtype=object) for c in chunks]) for k in chunks[0]}


def test_same_seed_same_tests_other_seed_other_tests() -> None:
    a = _all(SimulationConfig(2025, 7, 3_000, seed=1))
    b = _all(SimulationConfig(2025, 7, 3_000, seed=1))
    c = _all(SimulationConfig(2025, 7, 3_000, seed=2))
    for name in a:
        assert (a[name] == b[name]).all() or name in ("lat", "lon"), name
    assert list(a["lat"]) == list(b["lat"])
    assert not np.array_equal(a["download_mbps"], c["download_mbps"])
    assert len(set(a["test_id"])) == 3_000


def test_realistic_shape() -> None:
    cols = _all(SimulationConfig(2025, 7, 60_000, seed=9))
    places = load_places()
    nt = cols["network_type"]
    dl = cols["download_mbps"].astype(float)
    ok = dl > 0
    med = {n: np.median(dl[(nt == n) & ok]) for n in ("fixed", "mobile", "5g")}
    assert med["5g"] > med["fixed"] > med["mobile"]
    # overlap: some mobile tests beat the fixed median's lower decile
    assert (dl[(nt == "mobile") & ok] > np.percentile(dl[(nt == "fixed") & ok], 10)).mean() > 0.05
    invalid = (cols["valid"] == 0) | ~ok
    assert 0.015 < invalid.mean() < 0.06
    assert (cols["simulated"] == 1).all() and (cols["client_kind"] == "simulated").all()
    # population-weighted: Ho Chi Minh City (79) has far more tests than Lai Chau (12)
    prov = cols["province_code"]
    assert (prov == "79").sum() > 10 * (prov == "12").sum()
    assert set(prov) <= set(places.province_codes)
    assert set(cols["commune_code"]) <= set(places.commune_codes)
    # heavy testers: the busiest 5% of devices run well over 5% of the tests
    _, counts = np.unique(cols["device_hash"][cols["device_hash"] != ""], return_counts=True)
    top = np.sort(counts)[::-1][: max(1, len(counts) // 20)]
    assert top.sum() / counts.sum() > 0.15
    # diurnal: local evening busier than 3-4 a.m.
    local_hour = ((cols["started_at"].astype(np.int64) + 7 * 3600) // 3600) % 24
    assert (local_hour == 21).sum() > 5 * (local_hour == 3).sum()
    # mobile operators only on mobile/5G, FPT only on fixed
    assert "FPT Telecom" not in set(cols["provider"][nt != "fixed"])


def test_national_figures_look_like_vietnam_in_2025() -> None:
    """Device-day medians near the public figures the parameters cite (simulate.py): fixed ~272
    down / ~201 up, 5G ~447 / ~99, 4G mobile ~60; a tail of fixed samples at gigabit plans, none
    of them above a plan's headroom; Viettel fastest on fixed, wards faster than rural communes."""
    cols = _all(SimulationConfig(2025, 7, 120_000, seed=11))
    ok = (cols["valid"] == 1) & (cols["download_mbps"].astype(float) > 0)
    device = np.where(cols["device_hash"] != "", cols["device_hash"], cols["ip_hash"])
    key = np.char.add(
        np.char.add(device[ok].astype(str), cols["local_date"][ok].astype(str)), cols["network_type"][ok].astype(str)
    )
    _, first = np.unique(key, return_index=True)  # one test per device-day: enough for medians here
    at = np.flatnonzero(ok)[first]
    samples = {
        n: {m: cols[f"{m}_mbps"][at][cols["network_type"][at] == n].astype(float) for m in ("download", "upload")}
        for n in ("fixed", "mobile", "5g")
    }
    for network, down, up in (("fixed", 272.0, 201.0), ("5g", 447.0, 99.0), ("mobile", 60.0, 21.0)):
        assert np.median(samples[network]["download"]) == pytest.approx(down, rel=0.12), network
        assert np.median(samples[network]["upload"]) == pytest.approx(up, rel=0.15), network
    fixed = samples["fixed"]["download"]
    assert 0.02 < (fixed >= 1000).mean() < 0.10 and fixed.max() <= 1100.0
    dl = cols["download_mbps"].astype(float)
    nt, provider = cols["network_type"], cols["provider"]
    by_isp = {p: np.median(dl[ok & (nt == "fixed") & (provider == p)]) for p in ("Viettel", "VNPT", "FPT Telecom")}
    assert by_isp["Viettel"] > by_isp["VNPT"] > by_isp["FPT Telecom"]
    from ispeed.admin_geo import communes

    ward = {c.code for c in communes() if c.type == "phuong"}
    in_ward = np.array([c in ward for c in cols["commune_code"]])
    fixed_ok = ok & (nt == "fixed")
    assert np.median(dl[fixed_ok & in_ward]) > 1.15 * np.median(dl[fixed_ok & ~in_ward])


def test_places_come_from_admin_geo_when_present() -> None:
    places = load_places()
    assert len(places.province_codes) == 34 and len(places.commune_codes) == 3321
    fallback = builtin_places()
    assert len(fallback.province_codes) == 34 and len(fallback.commune_codes) == 3321
    assert "built-in" in fallback.source


def test_simulate_into_the_store_twice_is_idempotent(store: Store) -> None:
    cfg = SimulationConfig(2025, 7, 5_000, seed=3)
    report = simulate(store, cfg)
    assert report.rows == 5_000
    simulate(store, cfg)
    rows = store.query(
        "SELECT count(), sum(simulated), min(local_date), max(local_date), "
        "countIf(location_source = 'gps' AND lat IS NOT NULL), countIf(lat IS NULL) "
        "FROM {db}.measurements FINAL"
    )
    count, simulated, first, last, gps, no_gps = rows[0]
    assert count == simulated == 5_000
    assert str(first) == "2025-07-01" and str(last) == "2025-07-31"
    assert gps > 1_000 and no_gps > 1_000


def test_cli_simulate(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--month", "2025-02", "--tests", "1000", "--seed", "5", "--store", store_url]) == 0
    assert "1,000 simulated tests" in capsys.readouterr().err
    assert main(["simulate", "--month", "2025-02", "--tests", "many", "--store", store_url]) == 2
    assert "--tests" in capsys.readouterr().err
