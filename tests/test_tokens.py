"""Test tokens and receipts: genuine ones verify; forged, foreign, expired or mangled ones do not."""

from __future__ import annotations

import pytest

from ispeed.server import receipts, tokens
from ispeed.server.tokens import TokenError

SECRET = b"k" * 32


def test_token_round_trip_and_expiry() -> None:
    claims, token = tokens.issue(SECRET, "srv-1", "nethash", 4, 10.0, ttl_s=60, now=1000.0)
    assert tokens.verify(SECRET, token, "srv-1", now=1059.0) == claims
    with pytest.raises(TokenError) as err:
        tokens.verify(SECRET, token, "srv-1", now=1061.0)
    assert err.value.status == 410 and "expired" in err.value.reason
    assert tokens.verify(SECRET, token, "srv-1", now=1061.0, allow_expired=True) == claims


@pytest.mark.parametrize(
    "mangle,status",
    [
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), 403),  # signature changed
        (lambda t: "e30" + t[3:], 403),  # payload changed
        (lambda t: t.replace(".", ""), 400),  # no separator
        (lambda t: "", 400),
        (lambda t: t + "." + t, 400),
    ],
)
def test_mangled_tokens_are_refused(mangle, status) -> None:  # type: ignore[no-untyped-def]
    _, token = tokens.issue(SECRET, "srv-1", "n", 1, 1.0, ttl_s=60)
    with pytest.raises(TokenError) as err:
        tokens.verify(SECRET, mangle(token), "srv-1")
    assert err.value.status == status


def test_tokens_of_another_server_or_secret_are_refused() -> None:
    _, token = tokens.issue(SECRET, "srv-1", "n", 1, 1.0, ttl_s=60)
    with pytest.raises(TokenError):
        tokens.verify(b"x" * 32, token, "srv-1")
    with pytest.raises(TokenError) as err:
        tokens.verify(SECRET, token, "srv-2")
    assert "issued for server" in err.value.reason


def test_receipts() -> None:
    c = receipts.Counters("t1", 1.0, 4, 10.0, 1000, 2000, 12.5, 0.5, 0.0, signed_at=5000.0)
    text = receipts.sign(SECRET, c)
    assert receipts.verify(SECRET, text, "t1", now=5001.0) == c
    with pytest.raises(TokenError):
        receipts.verify(SECRET, text, "t2", now=5001.0)
    with pytest.raises(TokenError) as err:
        receipts.verify(SECRET, text, "t1", now=5000.0 + receipts.RECEIPT_TTL_S + 1)
    assert err.value.status == 410
    forged = receipts.sign(b"y" * 32, c)
    with pytest.raises(TokenError):
        receipts.verify(SECRET, forged, "t1", now=5001.0)


GARBAGE_SIGNATURES = ["é" * 43, "\ud800", "sig\x00", "ＡＢＣ", "€uro", "a" * 2000]


@pytest.mark.parametrize("garbage", GARBAGE_SIGNATURES)
def test_tokens_with_garbage_signatures_are_refused_with_4xx(garbage: str) -> None:
    """Non-ASCII signatures made compare_digest raise TypeError: a 500."""
    _, token = tokens.issue(SECRET, "srv-1", "n", 1, 1.0, ttl_s=60)
    body = token.split(".")[0]
    for mangled in (f"{body}.{garbage}", f"{garbage}.{token.split('.')[1]}", f"{garbage}.{garbage}"):
        with pytest.raises(TokenError) as err:
            tokens.verify(SECRET, mangled, "srv-1")
        assert 400 <= err.value.status < 500


@pytest.mark.parametrize("garbage", GARBAGE_SIGNATURES)
def test_receipts_with_garbage_signatures_are_refused_with_4xx(garbage: str) -> None:
    c = receipts.Counters("t1", 1.0, 4, 10.0, 1000, 2000, 12.5, 0.5, 0.0, signed_at=5000.0)
    body, sig = receipts.sign(SECRET, c).split(".")
    for mangled in (f"{body}.{garbage}", f"{garbage}.{sig}", garbage, f"{garbage}.{garbage}"):
        with pytest.raises(TokenError) as err:
            receipts.verify(SECRET, mangled, "t1", now=5001.0)
        assert 400 <= err.value.status < 500
