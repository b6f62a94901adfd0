// The browser speed-test engine: the same protocol and method v1 as the Python client
// (client/ispeed/client/engine.py, core/ispeed/core/method.py).
//
//   1. POST /api/v1/tests            -> a signed token for N streams and a phase duration
//   2. WebSocket /api/v1/latency     -> idle round trips (text echo), then loaded ones every 100 ms
//   3. download: N parallel fetch() streams, bodies read with a ReadableStream reader,
//      cumulative bytes sampled every 100 ms; ramp-up excluded by the method v1 rule
//   4. upload: N parallel fetch() POSTs of incompressible Blobs; the *server's* count is the
//      truth (GET /api/v1/tests/{id}?token after the phase), also polled for live progress
//   5. POST /api/v1/results with client_kind "browser"
//
// Method v2's responsiveness (RPM) runs beside them (rpm.js): foreign probes on new connections
// while idle and from the end of each transfer phase's ramp-up, the loaded WebSocket round trips as
// self probes. The page does not measure packet loss: browsers cannot send the UDP probes.
//
// cancel() stops everything at once (streams aborted, nothing submitted); onProgress gets each 100 ms
// sample (`mbps`) and the latency probes that arrived since the last one (`rtts`, ms).
// No dependencies, no build step: served as an ES module from site/testpage/.

import * as rpm from './rpm.js';

export const METHOD_VERSION = '2';
export const CLIENT_VERSION = 'ispeed-web/0.1.0';
const SAMPLE_INTERVAL_MS = 100;
const RAMP_FRACTION = 0.25;
const RAMP_MIN_S = 0.5;
const RAMP_MAX_FRACTION = 0.5;
const RAMP_RTTS = 25;
const MIN_LATENCY_PROBES = 10;
const LOADED_PROBE_INTERVAL_MS = 100;
const DOWNLOAD_REQUEST_BYTES = 1 << 30;
const UPLOAD_CHUNK_BYTES = 1 << 20;
const UPLOAD_BODY_CHUNKS = 64;            // 64 MiB per POST; streams repeat requests

// -- method v1 (mirrors core/ispeed/core/method.py) ---------------------------------------
export function rampSeconds(phaseS, rttMs = null) {
  const rttS = (rttMs || 0) / 1000;
  return Math.min(Math.max(RAMP_FRACTION * phaseS, RAMP_MIN_S, RAMP_RTTS * rttS), RAMP_MAX_FRACTION * phaseS);
}

export function steadyMbps(samples) {
  if (samples.length < 2) return 0;
  const [tEnd, bEnd] = samples[samples.length - 1];
  const tRamp = rampSeconds(tEnd - samples[0][0]) + samples[0][0];
  let [t0, b0] = samples.find(([t]) => t >= tRamp) || samples[0];
  if (tEnd - t0 <= 0) {
    [t0, b0] = samples[0];
    if (tEnd - t0 <= 0) return 0;
  }
  return (bEnd - b0) * 8 / (tEnd - t0) / 1e6;
}

export function latencySummary(rtts) {
  if (!rtts.length) return [null, null];
  const s = [...rtts].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  if (rtts.length < 2) return [median, null];
  let sum = 0;
  for (let i = 1; i < rtts.length; i++) sum += Math.abs(rtts[i] - rtts[i - 1]);
  return [median, sum / (rtts.length - 1)];
}

function cancelledError() {
  const err = new Error('cancelled');
  err.name = 'AbortError';
  return err;
}

const round3 = (v) => (v === null || v === undefined ? null : Math.round(v * 1000) / 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -- HTTP and latency helpers ----------------------------------------------------------------
async function api(base, method, path, body) {
  const init = {method, headers: {}, cache: 'no-store'};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(base + path, init);
  const answer = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(`${method} ${path}: HTTP ${resp.status} ${answer.error || ''}`.trim());
  return answer;
}

class Prober {
  constructor(ws) {
    this.ws = ws;
    this.seq = 0;
    this.waiting = null;
    ws.onmessage = (ev) => {
      if (this.waiting && ev.data === String(this.waiting.seq)) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve(performance.now() - w.t0);
      }
    };
  }

  static open(url) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(new Prober(ws));
      ws.onerror = () => reject(new Error('latency WebSocket failed to open'));
    });
  }

  probe(timeoutMs = 2000) {
    if (this.ws.readyState !== WebSocket.OPEN) return Promise.resolve(null);
    this.seq += 1;
    const seq = this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; resolve(null); }, timeoutMs);
      this.waiting = {seq, t0: performance.now(), resolve: (rtt) => { clearTimeout(timer); resolve(rtt); }};
      this.ws.send(String(seq));
    });
  }

  // Round trips every LOADED_PROBE_INTERVAL_MS until `stopAt`; `at` gets when each ended.
  async loaded(stopAt, out, at) {
    while (performance.now() < stopAt && this.ws.readyState === WebSocket.OPEN) {
      const rtt = await this.probe();
      if (rtt !== null) {
        out.push(rtt);
        at.push(performance.now());
      }
      await sleep(LOADED_PROBE_INTERVAL_MS);
    }
  }

  close() {
    try { this.ws.close(1000); } catch (e) { /* already closed */ }
    if (this.waiting) {   // a probe in flight ends now, not at its timeout
      const w = this.waiting;
      this.waiting = null;
      w.resolve(null);
    }
  }
}

// What the browser says about the connection (Network Information API, Chromium on Android):
// 'cellular' is a mobile connection; 'ethernet' a fixed one; Wi-Fi says nothing (a phone's hotspot
// looks like a home router). spec/evidence.md: the `device` evidence kind.
function deviceNetworkType() {
  const type = (typeof navigator !== 'undefined' && navigator.connection && navigator.connection.type) || '';
  if (type === 'cellular') return 'mobile';
  if (type === 'ethernet') return 'fixed';
  return '';
}

function uploadBlob() {
  const chunk = new Uint8Array(UPLOAD_CHUNK_BYTES);
  for (let i = 0; i < chunk.length; i += 65536) crypto.getRandomValues(chunk.subarray(i, i + 65536));
  return new Blob(new Array(UPLOAD_BODY_CHUNKS).fill(chunk), {type: 'application/octet-stream'});
}

// -- the test ------------------------------------------------------------------------------------
export class SpeedTest {
  // opts: {base, streams, durationS, networkType, position: {lat, lon, accuracy}, deviceId, onProgress}
  constructor(opts) {
    this.base = opts.base || '';
    this.streams = opts.streams || 4;
    this.durationS = opts.durationS || 10;
    this.networkType = opts.networkType || '';   // '' = not declared: the server decides from the evidence
    this.position = opts.position || null;
    this.deviceId = opts.deviceId || '';
    this.onProgress = opts.onProgress || (() => {});
    this.cancelled = false;
    this.controller = null;
    this.prober = null;
    this.foreign = null;   // the RPM's foreign probes (rpm.js), when the server offers them
  }

  // Stops the test at once: every stream's fetch is aborted, the latency socket closed, nothing submitted.
  cancel() {
    this.cancelled = true;
    if (this.controller) this.controller.abort();
    if (this.prober) this.prober.close();
    if (this.foreign) this.foreign.stop();
  }

  // Runs one phase: `streamFn(i, counters, signal)` per stream; `sampleFn()` gives the live total.
  // Foreign RPM probes run from the end of the ramp-up (working conditions) to the end.
  async phase(name, streamFn, prober, sampleFn, rttMs = null) {
    const counters = new Array(this.streams).fill(0);
    const controller = new AbortController();
    this.controller = controller;
    const start = performance.now();
    const stopAt = start + this.durationS * 1000;
    const rampMs = rampSeconds(this.durationS, rttMs) * 1000;
    const rtts = [];
    const rttsAt = [];
    const probing = prober ? prober.loaded(stopAt, rtts, rttsAt) : Promise.resolve();
    const foreign = this.foreign ? this.foreign.loaded(name, start + rampMs, stopAt) : Promise.resolve();
    const errors = [];
    const tasks = counters.map((_, i) => streamFn(i, counters, controller.signal).catch((err) => {
      if (!controller.signal.aborted) errors.push(err);
    }));
    const samples = [[0, 0]];
    let shown = 0;
    while (performance.now() < stopAt && errors.length === 0 && !this.cancelled) {
      await sleep(Math.min(SAMPLE_INTERVAL_MS, stopAt - performance.now()));
      if (this.cancelled) break;
      const t = (performance.now() - start) / 1000;
      const total = sampleFn ? await sampleFn(counters) : counters.reduce((a, b) => a + b, 0);
      const [prevT, prevB] = samples[samples.length - 1];
      samples.push([t, total]);
      this.onProgress({phase: name, elapsedS: t, durationS: this.durationS,
        mbps: (total - prevB) * 8 / Math.max(t - prevT, 1e-6) / 1e6, rtts: rtts.slice(shown)});
      shown = rtts.length;
    }
    controller.abort();
    await Promise.all(tasks);
    await probing;
    await foreign;
    if (this.cancelled) throw cancelledError();
    if (errors.length) throw errors[0];
    const total = counters.reduce((a, b) => a + b, 0);
    return {mbps: steadyMbps(samples), bytes: total, samples, loadedRtts: rtts,
      loadedAtMs: rttsAt.map((t) => t - start), rampMs};
  }

  downloadStream(token) {
    return async (i, counters, signal) => {
      const url = `${this.base}/api/v1/download?token=${encodeURIComponent(token)}&stream=${i}` +
        `&bytes=${DOWNLOAD_REQUEST_BYTES}`;
      while (!signal.aborted) {
        const resp = await fetch(url, {signal, cache: 'no-store'});
        if (!resp.ok) throw new Error(`download stream ${i}: HTTP ${resp.status}`);
        const reader = resp.body.getReader();
        for (;;) {
          const {done, value} = await reader.read();
          if (done) break;
          counters[i] += value.byteLength;
        }
      }
    };
  }

  uploadStream(token, blob) {
    return async (i, counters, signal) => {
      const url = `${this.base}/api/v1/upload?token=${encodeURIComponent(token)}&stream=${i}`;
      while (!signal.aborted) {
        const resp = await fetch(url, {method: 'POST', body: blob, signal, cache: 'no-store',
          headers: {'Content-Type': 'application/octet-stream'}});
        if (!resp.ok) throw new Error(`upload stream ${i}: HTTP ${resp.status}`);
        counters[i] += (await resp.json()).bytes || 0;
      }
    };
  }

  async run() {
    const ticket = await api(this.base, 'POST', '/api/v1/tests',
        {streams: this.streams, duration_s: this.durationS});
    const token = ticket.token;
    const counterPath = `/api/v1/tests/${ticket.test_id}?token=${encodeURIComponent(token)}`;
    const wsBase = (this.base || location.origin).replace(/^http/, 'ws');
    const prober = await Prober.open(`${wsBase}/api/v1/latency?token=${encodeURIComponent(token)}`);
    this.foreign = rpm.prober(ticket.paths, this.base, token);
    let down;
    let up;
    const idle = [];
    try {
      this.prober = prober;
      this.onProgress({phase: 'latency', elapsedS: 0, durationS: 1, mbps: 0, rtts: []});
      const idleForeign = this.foreign ? this.foreign.idle() : Promise.resolve();
      for (let k = 0; k < MIN_LATENCY_PROBES && !this.cancelled; k++) {
        const rtt = await prober.probe();
        if (rtt !== null) idle.push(rtt);
        this.onProgress({phase: 'latency', elapsedS: (k + 1) / MIN_LATENCY_PROBES, durationS: 1, mbps: 0,
          rtts: rtt === null ? [] : [rtt]});
        await sleep(20);
      }
      await idleForeign;
      if (this.cancelled) throw cancelledError();
      const idleRtt = idle.length ? Math.min(...idle) : null;
      down = await this.phase('download', this.downloadStream(token), prober, null, idleRtt);
      if (this.cancelled) throw cancelledError();
      const blob = uploadBlob();
      // live upload progress from the server's own count (what it received is what counts)
      const serverCount = async () => (await api(this.base, 'GET', counterPath)).bytes_up || 0;
      up = await this.phase('upload', this.uploadStream(token, blob), prober, serverCount, idleRtt);
    } finally {
      prober.close();
    }
    if (this.cancelled) throw cancelledError();
    await sleep(200); // let the server take in what was in flight
    if (this.cancelled) throw cancelledError();
    const counters = await api(this.base, 'GET', counterPath);
    const [latency, jitter] = latencySummary(idle);
    const figures = {
      idle: rpm.phase(this.foreign, 'idle', idle),
      download: rpm.phase(this.foreign, 'download', down.loadedRtts, down.loadedAtMs, down.rampMs),
      upload: rpm.phase(this.foreign, 'upload', up.loadedRtts, up.loadedAtMs, up.rampMs),
    };
    const responsiveness = rpm.fields(figures);
    // the server's own figures are the result (method v1 §4); the page's are sent for audit
    const serverUp = Number(counters.upload_mbps || 0);
    const serverDown = Number(counters.download_mbps || 0);
    const result = {
      test_id: ticket.test_id,
      server_id: ticket.server_id || '',
      download_mbps: round3(serverDown > 0 ? serverDown : down.mbps),
      upload_mbps: round3(serverUp > 0 ? serverUp : up.mbps),
      download_mbps_client: round3(down.mbps),
      upload_mbps_client: round3(up.mbps),
      latency_ms: round3(latency),
      jitter_ms: round3(jitter),
      loaded_latency_down_ms: round3(latencySummary(down.loadedRtts)[0]),
      loaded_latency_up_ms: round3(latencySummary(up.loadedRtts)[0]),
      bytes_down: down.bytes,
      bytes_up: Number(counters.bytes_up || 0),
      streams: this.streams,
      duration_s: this.durationS,
      network_type: this.networkType || deviceNetworkType() || 'fixed',   // the server's answer replaces it
      method_version: METHOD_VERSION,
    };
    const body = {...result, download_mbps: result.download_mbps_client, upload_mbps: result.upload_mbps_client,
      token, client_kind: 'browser', client_version: CLIENT_VERSION};
    delete body.server_id;
    delete body.download_mbps_client;
    delete body.upload_mbps_client;
    delete body.network_type;
    if (this.networkType) body.network_type = this.networkType;
    const reported = deviceNetworkType();
    if (reported) body.network_type_device = reported;
    if (this.deviceId) body.device_id = this.deviceId;
    for (const key of ['rpm_down', 'rpm_up']) {   // only when measured, as the Python client
      if (responsiveness[key] !== null) body[key] = responsiveness[key];
    }
    if (this.position) {
      body.lat = this.position.lat;
      body.lon = this.position.lon;
      if (this.position.accuracy !== undefined) body.accuracy_m = this.position.accuracy;
    }
    const answer = await api(this.base, 'POST', '/api/v1/results', body);
    return {...result, tcp_min_rtt_ms: counters.tcp_min_rtt_ms ?? null, submitted: true,
      valid: answer.valid, invalid_reason: answer.invalid_reason || '', provider: answer.provider || '',
      province_code: answer.province_code || '', commune_code: answer.commune_code || '',
      network_type: answer.network_type || result.network_type,
      network_type_source: answer.network_type_source || '', location_source: answer.location_source || '',
      device_source: answer.device_source || '', flags: answer.flags || [],
      ...responsiveness, rpm_server: counters.rpm_server ?? null,   // the server's evidence: its handshake round trips
      server_delay_p99_ms: counters.server_delay_p99_ms ?? null,
      ...(this.foreign && this.foreign.stopped ? {rpm_error: this.foreign.stopped} : {}),
      result_url: `/r/${ticket.test_id}`};
  }
}
