// Responsiveness (round trips per minute, draft-ietf-ippm-responsiveness-09) in the browser: a port
// of core/ispeed/core/responsiveness.py (the trimmed mean, the formula, the classes) and of
// client/ispeed/client/rpm.py (the probes), with the Python names in camelCase. spec/method-v2.md,
// "Responsiveness (RPM)" and "The browser page".
//
// Foreign probes: GET /api/v1/rpm?token= on a new TCP connection each. The server answers with
// `Connection: close` and refuses (400) a probe on a connection that carried an answer before, but
// a plain fetch() takes an idle keep-alive connection from Chromium's pool (the page's own API
// requests leave some there) and is refused. A request without credentials goes to a socket pool
// of its own (Chromium's privacy mode) that only the probes use and whose every connection the
// answer closes: with `credentials: 'omit'` each probe opens a new one (tests/test_browser_page.py
// checks that the server refused none and timed each probe's handshake).
// Times come from the probe's Resource Timing entry (same origin): tcp_f = connectEnd −
// connectStart (to secureConnectionStart with https), tls_f = connectEnd − secureConnectionStart
// (counted as one round trip, TLS 1.3; an older TLS reads slower, never faster), http_f =
// responseEnd − requestStart. Without an entry the whole probe stands for both tcp_f and http_f:
// two round trips read as one each, a lower figure, never a higher one.
// Self probes are the WebSocket round trips engine.js makes on its loaded latency connection.

export const MIN_PROBES = 5;   // of each kind (foreign, self) in a phase for an RPM of that phase
const TRIM_KEEP = 0.95;        // TMP: the trimmed mean keeps the lowest 95 % of the values
const MS_PER_MINUTE = 60000;
const EXCELLENT_FROM_RPM = 6000;   // 10 ms
const GOOD_FROM_RPM = 1000;        // 60 ms
const POOR_TO_RPM = 300;           // 200 ms: "300 RPM or worse" is poor
const FOREIGN_INTERVAL_MS = 200;
const FOREIGN_MAX_PER_PHASE = 60;
const FOREIGN_MAX_OUTSTANDING = 4;
const IDLE_FOREIGN_PROBES = 10;
const IDLE_MAX_FAILED = 2;
const PROBE_TIMEOUT_MS = 5000;
const STOPPING = [400, 403, 404, 405, 409, 410, 429];   // not a passing fault: stop asking
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// `ms`, or less when `signal` aborts (Cancel must not wait for the end of the phase)
const wait = (ms, signal) => new Promise((resolve) => {
  if (signal.aborted) return resolve();
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, {once: true});
});
const round = (v, digits) => (v === null ? null : Math.round(v * 10 ** digits) / 10 ** digits);

// Mean of the lowest 95 % (the largest floor(0.05 × n) dropped); null for no values.
export function trimmedMean(values) {
  if (!values.length) return null;
  const kept = [...values].sort((a, b) => a - b)
    .slice(0, values.length - Math.floor(values.length * (1 - TRIM_KEEP) + 1e-9));
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

export const rpmOf = (ms) => MS_PER_MINUTE / Math.max(ms, 1e-3);

// The draft's RPM of one phase; null with fewer than `minProbes` of either kind.
export function responsiveness(tcpMs, httpMs, selfMs, tlsMs = null, minProbes = MIN_PROBES) {
  if (Math.min(tcpMs.length, httpMs.length) < minProbes || selfMs.length < minProbes) return null;
  const [tmTcp, tmHttp, tmSelf] = [trimmedMean(tcpMs), trimmedMean(httpMs), trimmedMean(selfMs)];
  const tmTls = tlsMs && tlsMs.length ? trimmedMean(tlsMs) : null;
  const parts = tmTls === null ? [tmTcp, tmHttp] : [tmTcp, tmTls, tmHttp];
  const foreign = rpmOf(parts.reduce((a, b) => a + b, 0) / parts.length);
  const loaded = rpmOf(tmSelf);
  return {rpm: (foreign + loaded) / 2, foreign_rpm: foreign, self_rpm: loaded, tcp_ms: tmTcp, http_ms: tmHttp,
    self_ms: tmSelf, tls_ms: tmTls, foreign_probes: Math.min(tcpMs.length, httpMs.length), self_probes: selfMs.length};
}

export function asDict(r) {
  return {rpm: round(r.rpm, 1), foreign_rpm: round(r.foreign_rpm, 1), self_rpm: round(r.self_rpm, 1),
    tcp_ms: round(r.tcp_ms, 3), tls_ms: round(r.tls_ms, 3), http_ms: round(r.http_ms, 3), self_ms: round(r.self_ms, 3),
    foreign_probes: r.foreign_probes, self_probes: r.self_probes};
}

// The draft's class of an RPM: Excellent, Good, Fair or Poor (null when not measured).
export function label(rpm) {
  if (rpm === null || rpm === undefined) return null;
  if (rpm >= EXCELLENT_FROM_RPM) return 'Excellent';
  if (rpm >= GOOD_FROM_RPM) return 'Good';
  return rpm > POOR_TO_RPM ? 'Fair' : 'Poor';
}

function timing(url) {
  const entries = performance.getEntriesByName(url, 'resource');
  const e = entries[entries.length - 1];
  return e && e.requestStart > 0 && e.responseEnd >= e.requestStart ? e : null;
}

// One probe on a new connection: [tcpMs, tlsMs|null, httpMs, HTTP status, answer body].
export async function foreignProbe(url, signal) {
  const t0 = performance.now();
  const resp = await fetch(url, {credentials: 'omit', cache: 'no-store', signal});
  const body = await resp.text();
  const elapsed = performance.now() - t0;
  let e = timing(url);
  for (let k = 0; e === null && k < 5; k++) {   // the entry is queued once the answer has ended
    await sleep(2);
    e = timing(url);
  }
  if (e === null) return [elapsed, null, elapsed, resp.status, body];
  const tls = e.secureConnectionStart > 0 ? e.connectEnd - e.secureConnectionStart : null;
  const tcp = (tls === null ? e.connectEnd : e.secureConnectionStart) - e.connectStart;
  return [tcp, tls, e.responseEnd - e.requestStart, resp.status, body];
}

// Sends a test's foreign probes and keeps their times per phase.
export class ForeignProber {
  constructor(url) {
    this.url = url;
    this.phases = {};
    this.stopped = '';   // why probing stopped for the rest of the test ('' = it did not)
    this.count = 0;
    this.controller = new AbortController();   // stop(): every probe in flight ends now
    performance.clearResourceTimings();
    performance.setResourceTimingBufferSize(4000);   // the streams' and counters' entries fill 250 fast
  }

  samples(phase) {
    if (!this.phases[phase]) this.phases[phase] = {tcp_ms: [], tls_ms: [], http_ms: [], failed: 0, refused: ''};
    return this.phases[phase];
  }

  async one(samples, signal) {
    if (signal.aborted) return;
    this.count += 1;
    const url = `${this.url}&n=${this.count}`;   // its own Resource Timing entry
    const probe = new AbortController();
    const timeout = setTimeout(() => probe.abort(), PROBE_TIMEOUT_MS);
    const onAbort = () => probe.abort();
    signal.addEventListener('abort', onAbort);
    try {
      const [tcp, tls, http, status, body] = await foreignProbe(url, probe.signal);
      if (signal.aborted) return;   // still running when its phase ended: dropped
      if (status !== 200) {
        samples.failed += 1;
        samples.refused = `HTTP ${status}: ${body.slice(0, 200)}`;
        if (STOPPING.includes(status)) this.stopped = samples.refused;
        return;
      }
      samples.tcp_ms.push(tcp);
      samples.http_ms.push(http);
      if (tls !== null) samples.tls_ms.push(tls);
    } catch (err) {
      if (!signal.aborted) samples.failed += 1;   // a timeout or a network error: counted, not timed
    } finally {
      clearTimeout(timeout);
      signal.removeEventListener('abort', onAbort);
    }
  }

  // `count` probes one after another on the idle link (no more after IDLE_MAX_FAILED failures).
  async idle(count = IDLE_FOREIGN_PROBES) {
    const samples = this.samples('idle');
    for (let k = 0; k < count && !this.stopped && samples.failed < IDLE_MAX_FAILED; k++) {
      await this.one(samples, this.controller.signal);
      await sleep(20);
    }
  }

  // Probes from `startAt` to `stopAt` (performance.now() clock), FOREIGN_INTERVAL_MS apart, at
  // most FOREIGN_MAX_OUTSTANDING at once; those still running at `stopAt` are dropped.
  async loaded(phase, startAt, stopAt) {
    const samples = this.samples(phase);
    if (this.controller.signal.aborted) return;
    const ended = new AbortController();
    const stop = () => ended.abort();
    this.controller.signal.addEventListener('abort', stop);
    const running = new Set();
    await wait(Math.max(0, startAt - performance.now()), ended.signal);
    let sent = 0;
    while (sent < FOREIGN_MAX_PER_PHASE && !this.stopped && performance.now() < stopAt) {
      while (running.size >= FOREIGN_MAX_OUTSTANDING) await Promise.race(running);
      if (performance.now() >= stopAt || this.stopped) break;
      const task = this.one(samples, ended.signal).finally(() => running.delete(task));
      running.add(task);
      sent += 1;
      await wait(FOREIGN_INTERVAL_MS, ended.signal);
    }
    await wait(Math.max(0, stopAt - performance.now()), ended.signal);
    ended.abort();
    this.controller.signal.removeEventListener('abort', stop);
    await Promise.all(running);
  }

  stop() {
    this.stopped = this.stopped || 'cancelled';
    this.controller.abort();
  }

  // The phase's RPM from its foreign probes and the self probes given (null: too few).
  result(phase, selfMs) {
    const s = this.samples(phase);
    return responsiveness(s.tcp_ms, s.http_ms, selfMs, s.tls_ms.length ? s.tls_ms : null);
  }
}

// The test's foreign prober, when the server offers the probe (its `paths` name it: method v2).
export function prober(paths, base, token) {
  const path = paths && typeof paths.rpm === 'string' ? paths.rpm : null;
  if (!path) return null;
  return new ForeignProber(new URL(`${base}${path}?token=${encodeURIComponent(token)}`, location.href).href);
}

// A phase's RPM: its foreign probes with its self probes (`rtts`; in a transfer phase those that
// ended `atMs` after its start at or after its ramp-up, as the foreign probes started after it).
export function phase(foreign, name, rtts, atMs = null, rampMs = 0) {
  if (foreign === null) return null;
  const kept = atMs === null ? [...rtts] : rtts.filter((_, i) => atMs[i] >= rampMs);
  return foreign.result(name, kept);
}

// The result's RPM fields (as `ispeed test --json`): rpm_label is the class of the worse direction.
export function fields(figures) {
  const rounded = (r) => (r ? round(r.rpm, 1) : null);
  const directions = [figures.download, figures.upload].filter(Boolean).map((r) => r.rpm);
  const phases = {};
  for (const [name, r] of Object.entries(figures)) phases[name] = r ? asDict(r) : null;
  return {rpm_down: rounded(figures.download), rpm_up: rounded(figures.upload), rpm_idle: rounded(figures.idle),
    rpm_label: label(directions.length ? Math.min(...directions) : null), rpm_phases: phases};
}
