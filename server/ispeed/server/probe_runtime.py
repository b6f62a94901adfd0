"""Probes answered on their own thread and event loop, so the server never distorts a latency figure.

Under load the server's event loop is busy moving bytes: with 64 clients on one core each loop
iteration runs dozens of send and receive callbacks, and a latency probe that arrives waits for
all of them (64 loopback clients saw WebSocket round trips of p50 108 ms / p99 354 ms that the
link did not add). Here a second thread runs a small event loop that owns what a probe touches:

- the listening TCP sockets: it accepts every connection and peeks (MSG_PEEK, nothing consumed)
  at its first bytes. `GET /api/v1/rpm` (a responsiveness probe) and `GET /api/v1/latency` (the
  WebSocket of round-trip probes) are served here, by a small aiohttp application holding only
  those two routes and sharing the main application's registry, configuration and metrics;
  every other connection is handed to the main loop, whose aiohttp reads it from its first byte;
- the UDP probe port (`udp_endpoint`).

The main thread keeps the transfers, results and everything else. Both threads share one
interpreter, so a probe also waits for the GIL: `SWITCH_INTERVAL_S` (0.1 ms instead of Python's
5 ms) bounds how long the busy main thread keeps it once the probe thread asks; and the probe
thread asks the kernel for real-time scheduling (`_prioritize`).

What a probe waited here is measured, not assumed (spec/method-v2.md, "Server-added delay"):
`LoopLag` samples the probe loop's lateness continuously (a timer every LAG_TICK_S; lateness
includes waiting for the GIL), and each probe adds its receive-to-answer time to the lateness
seen around it. The per-test 99th percentile is stored (`server_delay_p99_ms`); a test above
`rpm_evidence.SERVER_DELAY_BOUND_MS` is flagged `server_delayed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from ispeed.server.loop_lag import LoopLag
from ispeed.server.metrics import Metrics

log = logging.getLogger("ispeed.server.probes")

RPM_PATH = "/api/v1/rpm"  # the routes served on the probe loop (app.py routes them)
LATENCY_PATH = "/api/v1/latency"


def _request_heads(path: str) -> tuple[bytes, ...]:
    """How a GET of `path` starts on the wire: with a query, or without one."""
    return (f"GET {path}?".encode(), f"GET {path} ".encode())


RPM_REQUESTS = _request_heads(RPM_PATH)
PROBE_REQUESTS = RPM_REQUESTS + _request_heads(LATENCY_PATH)
PEEK_BYTES = max(len(head) for head in PROBE_REQUESTS)
FIRST_BYTES_WAIT_S = 2.0  # a connection silent this long after accept goes to the main loop as is
ACCEPTS_PER_WAKE = 64
SWITCH_INTERVAL_S = 0.0001
REALTIME_PRIORITY = 1

T = TypeVar("T")


def is_probe(head: bytes) -> bool:
    """The first bytes of a connection ask for a probe route (served on the probe loop)."""
    return head.startswith(PROBE_REQUESTS)


class ProbeRuntime:
    """The probe thread: its loop, the listening sockets it accepts on, and the probe routes.

    `start()` returns once the thread serves; `stop()` stops accepting, closes the probe
    connections and the UDP port, and joins the thread. Connections that are not probes go to
    `main_factory` (the main AppRunner's protocol factory) on `main_loop`.
    """

    def __init__(
        self,
        probe_app: web.Application,
        listening: list[socket.socket],
        main_loop: asyncio.AbstractEventLoop,
        main_factory: Callable[[], asyncio.Protocol],
        metrics: Metrics,
    ) -> None:
        self.probe_app = probe_app
        self.listening = listening
        self.main_loop = main_loop
        self.main_factory = main_factory
        self.metrics = metrics
        self.lag = LoopLag()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._readable_at: dict[int, float] = {}  # fd -> monotonic time its first bytes were seen
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._runner: web.AppRunner | None = None
        self._old_switch = sys.getswitchinterval()
        self.priority = "default"  # the probe thread's scheduling policy once it runs (_prioritize)
        self.owned: list[asyncio.BaseTransport] = []  # made on the probe loop (the UDP port): closed there

    # -- lifetime (called from the main thread) ------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ispeed-probes", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.metrics.gauges["probe_loop_lag_p99_ms"] = lambda: round(self.lag.p99_ms(), 3)
        self.metrics.gauges["probe_thread_realtime"] = lambda: int(self.priority == "realtime")

    def call(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coro` on the probe loop; an awaitable for the main loop."""
        assert self.loop is not None
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def stop(self) -> None:
        if self.loop is None or self._stop is None or self._thread is None:
            return
        self.loop.call_soon_threadsafe(self._stop.set)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 15)
        sys.setswitchinterval(self._old_switch)

    def _run(self) -> None:
        self.priority = _prioritize()
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a base requirement
            loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(), or logged
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("the probe thread stopped")
        finally:
            loop.close()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._runner = web.AppRunner(self.probe_app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        lag_task = asyncio.create_task(self.lag.run(), name="ispeed-probe-lag")
        for lsock in self.listening:
            loop.add_reader(lsock.fileno(), self._accept, lsock)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for lsock in self.listening:
                loop.remove_reader(lsock.fileno())
                lsock.close()
            for transport in self.owned:
                transport.close()
            lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag_task
            await self._runner.cleanup()

    # -- accepting and routing (on the probe loop) ---------------------------------------------
    def _accept(self, lsock: socket.socket) -> None:
        loop = self.loop
        assert loop is not None
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                conn, _ = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and kin: the main loop's aiohttp would log the same
                log.warning("accept failed: %s", exc)
                return
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            timer = loop.call_later(FIRST_BYTES_WAIT_S, self._silent, conn)
            loop.add_reader(conn.fileno(), self._first_bytes, conn, timer)

    def _silent(self, conn: socket.socket) -> None:
        assert self.loop is not None
        self.loop.remove_reader(conn.fileno())
        self._to_main(conn)

    def _first_bytes(self, conn: socket.socket, timer: asyncio.TimerHandle) -> None:
        loop = self.loop
        assert loop is not None
        loop.remove_reader(conn.fileno())
        timer.cancel()
        try:
            head = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            conn.close()
            return
        if not head:  # closed before it asked for anything
            conn.close()
            return
        if not is_probe(head):
            self._to_main(conn)
            return
        self.metrics.inc("probe_connections_total")
        if head.startswith(RPM_REQUESTS):  # an RPM probe: its wait is kept (rpm.probe takes it)
            self._readable_at[conn.fileno()] = time.monotonic() - self.lag.now_ms() / 1000
        assert self._runner is not None and self._runner.server is not None
        loop.create_task(self._adopt(loop, self._runner.server, conn))

    def _to_main(self, conn: socket.socket) -> None:
        self.main_loop.call_soon_threadsafe(self._adopt_on_main, conn)

    def _adopt_on_main(self, conn: socket.socket) -> None:
        self.main_loop.create_task(self._adopt(self.main_loop, self.main_factory, conn))

    @staticmethod
    async def _adopt(
        loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol], conn: socket.socket
    ) -> None:
        try:
            await loop.connect_accepted_socket(factory, conn)
        except OSError as exc:  # the peer went away between accept and adoption
            log.debug("connection lost before it was served: %s", exc)
            conn.close()

    # -- what a probe waited (probe loop) ------------------------------------------------------
    def waited_ms(self, fd: int) -> float | None:
        """Time since the connection on `fd` showed its first bytes (its request), lateness included."""
        at = self._readable_at.pop(fd, None)
        return None if at is None else (time.monotonic() - at) * 1000


def _prioritize() -> str:
    """Let the calling thread preempt the busy main thread as soon as a probe wakes it.

    Under the default policy a thread that wakes often is not always run at once: the kernel
    lets the running thread finish its slice (up to a 4 ms tick), which read as 4-6 ms of
    server-added delay with 16 loopback clients. A real-time round-robin priority (the lowest,
    1) runs the probe thread at once; it needs CAP_SYS_NICE (root, or `AmbientCapabilities=
    CAP_SYS_NICE` in a systemd unit). The thread does little work, and the kernel keeps 5 % of
    each second for other threads whatever a real-time thread does. Without the capability the
    thread keeps the default policy. Returns the policy in force, for the log and /metrics.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(REALTIME_PRIORITY))  # 0: this thread
    except (PermissionError, OSError, AttributeError) as exc:
        log.info("probe thread at the default scheduling policy (%s): grant CAP_SYS_NICE for real-time", exc)
        return "default"
    return "realtime"


PROBE_RUNTIME = web.AppKey("probe_runtime", ProbeRuntime)
