"""Method v2's UDP probe: its wire format and tags, the server's per-phase counts, the joined figures."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from ispeed.core import quality, udp_probe
from ispeed.core.errors import ValidationError
from ispeed.core.udp_probe import ANSWER_BURST, ANSWER_RATE_PER_S, SEQ_SLACK
from ispeed.server import receipts, udp_result
from ispeed.server.receipts import Counters
from ispeed.server.udp_counts import PhaseCount, UdpTest, udp_key

KEY = b"k" * 32
TID = uuid.uuid4().bytes


def test_a_probe_round_trips_and_its_tag_covers_every_byte_but_itself() -> None:
    data = udp_probe.pack(KEY, TID, 1, 7, 123456789, 100)
    assert len(data) == 100 and data[0] == udp_probe.VERSION
    probe = udp_probe.parse(data)
    assert probe is not None and (probe.phase, probe.seq, probe.sent_ns, probe.test_id) == (1, 7, 123456789, TID)
    assert not probe.is_echo and udp_probe.tag_ok(KEY, data)
    assert not udp_probe.tag_ok(b"x" * 32, data)  # another test's key
    for offset in (1, 5, 20, 25, 40, 99):  # header or padding changed: the tag no longer fits
        forged = bytearray(data)
        forged[offset] ^= 0x01
        assert not udp_probe.tag_ok(KEY, bytes(forged)), offset


def test_the_echo_has_the_probes_length_its_arrival_number_and_a_new_tag() -> None:
    data = udp_probe.pack(KEY, TID, 2, 3, 42, 64)
    answer = udp_probe.echo(KEY, data, 17)
    assert len(answer) == len(data)
    echo = udp_probe.parse(answer)
    assert echo is not None and echo.is_echo and echo.phase == 2 and echo.arrival == 17 and echo.sent_ns == 42
    assert udp_probe.tag_ok(KEY, answer)
    assert answer[udp_probe.TAG_OFFSET : udp_probe.HEADER_BYTES] != data[udp_probe.TAG_OFFSET : udp_probe.HEADER_BYTES]


def test_datagrams_that_are_no_probe_do_not_parse() -> None:
    good = udp_probe.pack(KEY, TID, 0, 0, 0)
    assert udp_probe.parse(good[: udp_probe.MIN_PROBE_BYTES - 1]) is None
    assert udp_probe.parse(good + bytes(udp_probe.MAX_PROBE_BYTES)) is None
    assert udp_probe.parse(b"\x02" + good[1:]) is None  # another version
    assert udp_probe.parse(good[:1] + b"\x03" + good[2:]) is None  # no such phase
    with pytest.raises(ValueError, match="42 to 512 bytes"):
        udp_probe.pack(KEY, TID, 0, 0, 0, 41)


def test_keys_are_per_test_and_travel_as_base64url() -> None:
    a, b = udp_key(b"s" * 20, str(uuid.uuid4())), udp_key(b"s" * 20, str(uuid.uuid4()))
    assert a != b and len(a) == 32
    assert udp_probe.decode_key(udp_probe.encode_key(a)) == a


def test_the_server_counts_arrivals_duplicates_and_reordering_per_phase() -> None:
    phase = PhaseCount(cap=1000)
    t = 1_000_000_000
    arrivals = [phase.arrive(seq, t + seq * 10_000_000) for seq in (0, 1, 3, 2, 3, 5)]
    assert arrivals == [0, 1, 2, 3, -1, 4]
    assert phase.summary() == {
        "probes": 6,  # highest + 1: seq 4 never arrived
        "received": 5,
        "echoed": 0,
        "duplicates": 1,
        "reordered": 1,  # 2 after 3
        "refused": 0,
    }


def test_sequence_numbers_beyond_the_cap_or_the_answer_rate_are_not_counted() -> None:
    phase = PhaseCount(cap=500)
    t = 5_000_000_000
    assert phase.arrive(SEQ_SLACK + 1, t) == -2  # the first probe of a phase is one of its first
    assert phase.arrive(0, t) == 0
    one_s = int(ANSWER_RATE_PER_S) + SEQ_SLACK
    assert phase.arrive(one_s + 1, t + 1_000_000_000) == -2  # more than the rate allows in 1 s
    assert phase.arrive(one_s - 1, t + 1_000_000_000) == 1
    assert phase.arrive(500, t + 10_000_000_000) == -2  # the cap
    assert phase.summary()["probes"] == one_s  # a client cannot claim probes it could not have sent


def test_the_answer_budget_is_a_bounded_rate() -> None:
    test = UdpTest(KEY, str(uuid.uuid4()), 10.0)
    t = 1_000_000_000
    answered = sum(test.may_answer(t) for _ in range(1000))
    assert answered == ANSWER_BURST
    # a flood of 1000 probes a second for 2 s: the rate's worth of answers, no more
    flood = sum(test.may_answer(t + i * 1_000_000) for i in range(1, 2001))
    assert flood == pytest.approx(2 * ANSWER_RATE_PER_S, abs=1)


def test_p90_is_the_nearest_rank() -> None:
    assert quality.p90([]) is None
    assert quality.p90([5.0]) == 5.0
    assert quality.p90([float(v) for v in range(1, 11)]) == 9.0
    assert quality.p90([float(v) for v in range(1, 12)]) == 10.0
    assert quality.rtt_summary([10.0, 12.0, 11.0]) == (11.0, 12.0, 1.5)


def test_upstream_loss_rests_on_the_server_and_downstream_on_the_clients_echoes() -> None:
    server = {"probes": 300, "received": 285, "echoed": 285, "duplicates": 1, "reordered": 2, "refused": 0}
    client = {"probes": 300, "echoes": 270, "duplicates": 0, "reordered": 3, "rtt_ms": 40.1234, "rtt_p90_ms": 42.0}
    fig = quality.phase_figures(server, client)
    assert (fig["loss_up_pct"], fig["loss_down_pct"]) == (5.0, pytest.approx(100 * 15 / 285, abs=1e-3))
    assert (fig["duplicates"], fig["reordered"], fig["rtt_ms"]) == (1, 5, 40.123)
    # a client claiming more probes does not move the upstream figure; more echoes than sent leaves it out
    inflated = quality.phase_figures(server, {**client, "probes": 10_000, "echoes": 400})
    assert inflated["loss_up_pct"] == 5.0 and inflated["probes"] == 300 and inflated["loss_down_pct"] is None
    reasons = quality.disagreements(server, {**client, "probes": 10_000, "echoes": 400})
    assert len(reasons) == 2 and "400 echoes received of 285" in reasons[0]
    assert quality.disagreements(server, {**client, "probes": 303}) == []  # a few lost at the tail
    assert "probes sent, but the server saw" in quality.disagreements(server, {**client, "probes": 250})[0]


def _counters(udp: dict[str, dict[str, int]] | None) -> Counters:
    return Counters(str(uuid.uuid4()), 0.0, 1, 1.0, 1, 1, 1.0, None, None, signed_at=time.time(), udp=udp)


def test_what_is_stored_and_on_what_it_rests() -> None:
    idle = {"probes": 300, "received": 240, "echoed": 240, "duplicates": 0, "reordered": 0, "refused": 0}
    # the client claims no loss at all and 1000 probes: stored with the server's upstream count
    claim = {"idle": {"probes": 1000, "echoes": 240, "rtt_ms": 30.0, "rtt_p90_ms": 31.0, "jitter_ms": 0.5}}
    got = udp_result.stored("ok", claim, _counters({"idle": idle}))
    assert (got.udp_status, got.udp_probes, got.loss_up_pct, got.loss_down_pct) == ("ok", 300, 20.0, 0.0)
    assert got.flags == (udp_result.FLAG_DISAGREES,)
    phases = json.loads(got.quality_phases)
    assert phases["idle"]["probes_client"] == 1000 and phases["idle"]["loss_up_source"] == "server"
    # "ok" for probes the server never answered is stored blocked; blocked keeps no figures
    assert udp_result.stored("ok", claim, _counters(None)).udp_status == "blocked"
    assert udp_result.stored("blocked", {}, _counters({"idle": idle})).loss_up_pct is None
    assert udp_result.stored(None, {}, _counters({"idle": idle})) == udp_result.StoredQuality()


def test_malformed_phases_are_refused_naming_the_part() -> None:
    for text, field in (
        ("[1]", "quality_phases"),
        ("{", "quality_phases"),
        ('{"warmup": {}}', "quality_phases"),
        ('{"idle": {"echoes": -1}}', "quality_phases.idle.echoes"),
        ('{"idle": {"loss_up_pct": 0}}', "quality_phases.idle.loss_up_pct"),
    ):
        with pytest.raises(ValidationError) as caught:
            udp_result.parse_phases(text)
        assert caught.value.field == field, text


def test_the_receipt_carries_the_udp_counts() -> None:
    udp = {"idle": {"probes": 300, "received": 299, "echoed": 299, "duplicates": 0, "reordered": 0, "refused": 0}}
    counters = _counters(udp)
    assert receipts.verify(b"s" * 20, receipts.sign(b"s" * 20, counters), counters.test_id).udp == udp


def test_the_terminal_summary_says_what_udp_measured() -> None:
    from ispeed.client.cli import format_result

    base = {
        "test_id": "t",
        "server": "http://s",
        "download_mbps": 1.0,
        "upload_mbps": 1.0,
        "streams": 1,
        "duration_s": 1.0,
        "latency_ms": 1.0,
        "jitter_ms": 0.1,
        "loaded_latency_down_ms": 2.0,
        "loaded_latency_up_ms": 2.0,
        "submitted": False,
    }
    ok = {"udp": "ok", "loss_down_pct": 1.0, "loss_up_pct": 0.0, "udp_probes": 300, "udp_rtt_ms": 40.5}
    text = format_result({**base, **ok, "udp_rtt_p90_ms": 41.0})
    assert "loss down 1.00 %, up 0.00 % (300 probes), round trip 40.50 ms (p90 41.00)" in text
    assert "blocked on this path" in format_result({**base, "udp": "blocked"})
    assert "not measured" in format_result({**base, "udp": None})
