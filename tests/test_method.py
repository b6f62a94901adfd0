"""Method v1's throughput rule (core/ispeed/core/method.py, spec/method-v1.md §5) on made-up
timelines whose truth is known: a steady rate, and receive holes (data held back by the
receiver until a retransmission fills the gap) placed at the window's edges."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from ispeed.core import method, tcpinfo

RATE = 2_390_000  # bytes/s: 20 Mbit/s × 1448/1514
T = 5.0
TRUTH_MBPS = RATE * 8 / 1e6


def timeline(
    holes: Sequence[tuple[float, float, int]] = (), step: float = 0.1, always_ooo: bool = False
) -> tuple[list[tuple[float, int]], list[int]]:
    """Samples of a link at RATE, with holes (start s, end s, bytes held back meanwhile); the
    receiver's out-of-order count rises in every sample interval that overlaps a hole."""
    samples, ooo, count = [], [], 0
    for k in range(int(round(T / step)) + 1):
        t = round(k * step, 6)
        held = sum(b for a, e, b in holes if a <= t < e)
        if k and (always_ooo or any(a < t and t - step < e for a, e, _ in holes)):
            count += 7
        samples.append((t, int(RATE * t) - held))
        ooo.append(count)
    return samples, ooo


def rel_err(mbps: float) -> float:
    return mbps / TRUTH_MBPS - 1


def test_ramp_rule_takes_the_largest_term_up_to_half_the_phase() -> None:
    assert method.ramp_seconds(10.0) == 2.5  # 0.25 × T
    assert method.ramp_seconds(1.0) == 0.5  # the 0.5 s floor
    assert method.ramp_seconds(5.0, 80.0) == pytest.approx(2.0)  # 25 RTTs
    assert method.ramp_seconds(5.0, 300.0) == 2.5  # capped at 0.5 × T


def test_steady_link_reads_its_rate_with_or_without_the_ooo_count() -> None:
    samples, ooo = timeline()
    assert rel_err(method.steady_mbps(samples, 80.0)) == pytest.approx(0, abs=1e-6)
    assert rel_err(method.steady_mbps(samples, 80.0, ooo)) == pytest.approx(0, abs=1e-6)


def test_a_hole_open_at_the_window_start_over_reports_unless_the_edge_moves() -> None:
    # what CI met at 20 Mbit/s × 80 ms (cubic's first queue overflow just at the 2 s ramp)
    samples, ooo = timeline(holes=[(1.9, 2.45, 450_000)])
    assert rel_err(method.steady_mbps(samples, 80.0)) > 0.05
    assert rel_err(method.steady_mbps(samples, 80.0, ooo)) == pytest.approx(0, abs=1e-6)


def test_a_hole_open_at_the_window_end_under_reports_unless_the_edge_moves() -> None:
    samples, ooo = timeline(holes=[(4.75, 5.5, 300_000)])
    assert rel_err(method.steady_mbps(samples, 80.0)) < -0.03
    assert rel_err(method.steady_mbps(samples, 80.0, ooo)) == pytest.approx(0, abs=1e-6)


def test_a_hole_inside_the_window_is_left_alone() -> None:
    # dip and burst both inside: the endpoints already see all of it
    samples, ooo = timeline(holes=[(3.0, 3.5, 450_000)])
    assert method.steady_mbps(samples, 80.0, ooo) == method.steady_mbps(samples, 80.0)
    assert rel_err(method.steady_mbps(samples, 80.0, ooo)) == pytest.approx(0, abs=1e-6)


def test_edges_move_at_most_the_shift_fraction_then_the_rule_stands() -> None:
    # a hole longer than EDGE_SHIFT_FRACTION × T after the ramp: no clear sample close enough
    long_hole = [(1.9, 2.0 + method.EDGE_SHIFT_FRACTION * T + 0.3, 450_000)]
    samples, ooo = timeline(holes=long_hole)
    assert method.steady_mbps(samples, 80.0, ooo) == method.steady_mbps(samples, 80.0)


def test_steady_random_loss_keeps_the_plain_rule() -> None:
    samples, ooo = timeline(holes=[(2.0, 2.3, 100_000)], always_ooo=True)
    assert method.steady_mbps(samples, 80.0, ooo) == method.steady_mbps(samples, 80.0)


def test_an_ooo_count_of_another_length_is_ignored() -> None:
    samples, ooo = timeline(holes=[(1.9, 2.45, 450_000)])
    assert method.steady_mbps(samples, 80.0, ooo[:-1]) == method.steady_mbps(samples, 80.0)


def test_degenerate_timelines() -> None:
    assert method.steady_mbps([]) == 0.0
    assert method.steady_mbps([(0.0, 0)]) == 0.0
    assert method.steady_mbps([(0.0, 0), (0.0, 10)]) == 0.0
    assert method.steady_mbps([(0.0, 0), (1.0, 125_000)], ooo=[0, 0]) == pytest.approx(1.0)
    # bytes only before the ramp: nothing moved in the window, and that is what it says
    assert method.steady_mbps([(0.0, 0), (0.2, 500_000), (1.0, 500_000), (2.0, 500_000)], ooo=[0, 0, 0, 0]) == 0.0


def test_ooo_counter_reads_real_sockets_and_keeps_counts_of_closed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        counter = tcpinfo.OooCounter()
        assert not counter.known and counter.total() == 0
        counter.watch(accepted)
        assert counter.known  # this kernel has tcpi_rcv_ooopack
        assert tcpinfo.ooo_packets(accepted) == tcpinfo.read_fields(accepted)["RcvOooPack"]
        client.sendall(b"x" * 100_000)  # loopback never reorders
        assert counter.total() == 0
        # the summing over sockets that come and go, with the kernel's counts made up
        counts = {accepted: 5, client: 100}
        monkeypatch.setattr(tcpinfo, "ooo_packets", lambda sock: counts.get(sock))
        counter.watch(client)  # its 100 before the phase do not count
        assert counter.total() == 5
        counts[client] = 103
        counter.unwatch(client)  # read once more as it goes
        counts[client] = 500
        assert counter.total() == 8
        counts[accepted] = None  # closed by the peer: the count stays
        assert counter.total() == 8
    finally:
        for s in (client, accepted, server):
            s.close()
