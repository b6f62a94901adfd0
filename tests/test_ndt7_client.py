"""M-Lab's official ndt7 client (npm `@m-lab/ndt7`, in Node) against a real `ispeed serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

from ispeed.core.store import open_store
from tests.ndt7_harness import ensure_node_harness, run_official_client
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.slow


def test_official_ndt7_client_completes_and_its_run_is_stored(tmp_path: Path) -> None:
    node = ensure_node_harness()
    store = f"chdb:{tmp_path / 'store'}"
    with ServeProcess(store) as server:
        host = server.url.split("://", 1)[1]
        # discovery through our locate-style endpoint, as M-Lab clients do with locate.measurementlab.net
        rc, out, err = run_official_client(node, "--locate", f"{server.url}/v2/nearest/ndt/ndt7")
    assert rc == 0, (out, err)
    assert out["errors"] == [] and out["serverChosen"] == "local-1"
    # ~10 s subtests, the client's own 12 s guard never needed
    assert 18 <= out["seconds"] <= 30
    down, up = out["download"], out["upload"]
    # loopback: several Gbit/s down; the Node client's upload loop is slower but far above 100 Mbit/s
    assert down["client_mbps"] > 1000 and down["server_app_mbps"] > 1000
    assert up["server_mbps"] > 100 and up["server_app_bytes"] > 0
    # the server's count is the upload truth: within 10% of what the client believes it sent
    assert up["server_mbps"] == pytest.approx(up["client_mbps"], rel=0.1)
    assert down["min_rtt_us"] is not None and up["min_rtt_us"] is not None and down["min_rtt_us"] < 5000
    assert down["tcpinfo_fields"] >= 50
    assert out["serverMessages"]["download"] >= 10 and out["serverMessages"]["upload"] >= 10
    conn = out["connectionInfo"]["download"]
    assert conn["Server"] == host and conn["Client"].startswith("127.0.0.1:") and len(conn["UUID"]) == 36

    with open_store(store) as s:
        rows = s.query(
            "SELECT test_id, client_kind, client_version, method_version, download_mbps, upload_mbps,"
            " tcp_min_rtt_ms, streams, valid, invalid_reason, ip_network FROM {db}.measurements"
        )
    assert len(rows) == 1, rows  # download and upload paired into one result
    test_id, kind, version, method, down_mbps, up_mbps, min_rtt, streams, valid, reason, net = rows[0]
    assert test_id == conn["UUID"] and kind == "ndt7" and method == "ndt7" and streams == 1
    assert version == "ispeed-ndt7-harness/1.0.0 (ndt7-js/0.1.4)"
    assert (valid, reason, net) == (1, "", "127.0.0.0/24")
    assert down_mbps == pytest.approx(down["server_app_mbps"], rel=0.1)
    assert up_mbps == pytest.approx(up["server_mbps"], rel=0.05)
    assert min_rtt is not None and min_rtt < 5
    print(
        f"\nndt7 official client on loopback: download {down['client_mbps']:.0f} Mbit/s (client), "
        f"upload {up['server_mbps']:.0f} Mbit/s (server count), MinRTT {down['min_rtt_us']} µs"
    )
