"""Upload bodies of known length, counted without aiohttp's body parser.

aiohttp hands a request body over through its HTTP parser and a StreamReader: each read becomes
a bytes object, is copied once more into another per body chunk, queued, and wakes the handler
task; for an upload that is only counted and dropped, that is most of the server's CPU. A body
with a Content-Length is instead received by `BodySink`, swapped in as the connection's protocol:
it reads into one buffer that nothing ever looks at (recv_into, no allocation), counts, and ends
the request's StreamReader (feed_eof) when the body is complete, which is what the handler awaits.

aiohttp keeps the connection otherwise: the sink forwards it the write-flow, EOF and
connection-lost callbacks, so its writing of the answer, its disconnect handling (an exception on
the request's payload), the sweeper's `transport.close()` and its shutdown work as for any request.
Its parser is left mid-body, so an answer after a take-over must close the connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.streams import StreamReader

SINK_BYTES = 256 << 10  # per read: 128 KiB-1 MiB cost alike (~0.19 CPU s/GB on loopback); 64 KiB ~0.33
# One buffer for every connection: a read fills it and the count is all that is kept, before the
# next read (of any connection: one thread) overwrites it. Nothing reads its contents.
_SINK = memoryview(bytearray(SINK_BYTES))
# SO_RCVLOWAT: the kernel wakes the server once this many bytes wait, not at every segment. On
# loopback the senders (curl) pay for the receive side's per-segment work and wake-ups; fewer,
# fuller reads cut theirs by ~1/5 and the server's own CPU a little: throughput went from ~0.9 to
# ~1.05-1.2 × nginx (interleaved runs, busy and quiet machine). The mark follows each stream's
# rate so that a byte waits about LOWAT_WAIT_S before it is counted (the upload timeline has
# 100 ms samples), and drops to 1 byte when a stream stalls.
# Only for streams above LOWAT_MIN_BPS: below the mark the kernel ACKs every second segment
# (tcp_input.c's "application uses SO_RCVLOWAT" rule), doubling the ACKs a stream sends. On the
# accuracy lab's 500 Mbit/s points (4 streams of 125 Mbit/s) the extra ACKs made the lab's delay
# line late and its bottleneck drop more: cubic's upload read 0.8-4.5 % low (3 runs; without the
# mark: within 1 %, 2 runs), while the CPU the mark saves only matters at multi-gigabit rates.
LOWAT_WAIT_S = 0.002
LOWAT_MIN_BPS = 125_000_000  # bytes/s: 1 Gbit/s per stream
RETUNE_S = 0.02


def eligible(request: web.BaseRequest) -> bool:
    """A body of known length still arriving, as is, on a plain TCP connection aiohttp still holds.

    Chunked bodies and bodies already complete keep aiohttp's path (encoded ones are refused
    before: see `measure.upload`).
    """
    transport = request.transport
    return (
        request.content_length is not None
        and hdrs.TRANSFER_ENCODING not in request.headers
        and not request.content.is_eof()
        and request.content.exception() is None
        and transport is not None
        and not transport.is_closing()
        and transport.get_extra_info("sslcontext") is None
        and transport.get_protocol() is request.protocol
    )


async def read_body(request: web.BaseRequest, count: Callable[[int], None]) -> bool:
    """Call `count(n)` for each part of the body as it arrives; return once it is complete.

    True when the sink took the connection over (the answer must close it); False when the body
    was already all in aiohttp's buffer. Raises what the request payload is given when the client
    disconnects or the server shuts down (ConnectionResetError, CancelledError), like a read.
    """
    content = request.content
    length = request.content_length
    transport = request.transport
    assert length is not None and transport is not None  # eligible(request)
    taken = 0
    # what aiohttp's parser already took in; each read lets it parse what it held back while paused
    while chunk := content.read_nowait():
        taken += len(chunk)
        count(len(chunk))
    if content.is_eof():
        return False
    sink = BodySink(request.protocol, content, length - taken, count, transport.get_extra_info("socket"))
    # aiohttp's private behaviour (its protocol swapped out mid-body): pyproject bounds aiohttp <3.15
    transport.set_protocol(sink)  # no await since the reads above: no byte can have slipped past
    transport.resume_reading()  # aiohttp pauses reading while its buffer is full; the sink has none
    try:
        await content.wait_eof()
    finally:
        sink.stop()  # on a shutdown the connection lingers a moment: what it still sends is not counted
    return True


class BodySink(asyncio.BufferedProtocol):
    """Counts and drops the rest of one body; aiohttp's protocol gets every other callback."""

    def __init__(
        self,
        http: asyncio.Protocol,
        content: StreamReader,
        left: int,
        count: Callable[[int], None],
        sock: socket.socket | None,
    ) -> None:
        self._http = http
        self._content = content
        self._left = left
        self._count = count
        self._sock = sock
        self._lowat = 1  # the socket's SO_RCVLOWAT (1: the kernel's default)
        self._since_retune = 0  # bytes
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(RETUNE_S, self._retune)

    def stop(self) -> None:
        self._left = 0
        if self._timer:
            self._timer.cancel()
            self._timer = None

    def _retune(self) -> None:
        # bytes per RETUNE_S, scaled to LOWAT_WAIT_S; a slow stream or a stall sets 1: read at once
        fast = self._since_retune >= LOWAT_MIN_BPS * RETUNE_S
        self._set_lowat(int(self._since_retune * LOWAT_WAIT_S / RETUNE_S) if fast else 1)
        self._since_retune = 0
        self._timer = asyncio.get_running_loop().call_later(RETUNE_S, self._retune)

    def _set_lowat(self, n: int) -> None:
        n = max(1, min(n, SINK_BYTES, self._left))  # never above what is still to come
        if n != self._lowat and self._sock is not None:
            try:
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, n)
            except (OSError, ValueError):  # closed meanwhile (uvloop's pseudo-socket: ValueError)
                return
            self._lowat = n

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SINK

    def buffer_updated(self, nbytes: int) -> None:
        left = self._left
        if left <= 0:
            return  # past the body (a pipelined request): dropped, the answer closes the connection
        n = min(nbytes, left)
        self._left = left - n
        self._since_retune += n
        self._count(n)  # may close the transport (deadline, byte limit): connection_lost follows
        if n == left:
            self.stop()
            self._content.feed_eof()
        elif self._left < self._lowat:
            self._set_lowat(self._left)  # the body's last bytes must wake the server too

    def eof_received(self) -> bool | None:
        return self._http.eof_received()  # aiohttp closes: a half-closed body is an aborted one

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop()
        self._http.connection_lost(exc)  # sets the payload's exception: the handler wakes

    def pause_writing(self) -> None:
        self._http.pause_writing()  # aiohttp writes the answer and waits on its own drain

    def resume_writing(self) -> None:
        self._http.resume_writing()
