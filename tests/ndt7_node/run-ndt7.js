#!/usr/bin/env node
// Run M-Lab's official ndt7 client (@m-lab/ndt7) in Node against a server, unmodified.
//
// The library is written for browsers: it starts each subtest in a Web Worker, and the
// workers use a global WebSocket. Node 20 has neither, so this harness provides both:
// `Worker` is a thin adapter over worker_threads, and each worker thread gets the `ws`
// package as its global WebSocket before the library's own worker file is loaded.
//
//   node run-ndt7.js --server 127.0.0.1:8080          (explicit server, ws://)
//   node run-ndt7.js --locate http://127.0.0.1:8080/v2/nearest/ndt/ndt7
//
// Prints one JSON object (return code, client/server figures, errors) and exits with the
// library's return code (0 = both subtests completed).
'use strict';

const path = require('path');
const workerThreads = require('worker_threads');
const ndt7 = require('@m-lab/ndt7');

const SRC = path.dirname(require.resolve('@m-lab/ndt7'));
const WS = require.resolve('ws');

// Runs inside each worker thread: browser-worker globals, then the library's worker file.
const BOOT = `
const {parentPort, workerData} = require('worker_threads');
globalThis.WebSocket = require(workerData.ws);
globalThis.self = globalThis;
globalThis.postMessage = (msg) => parentPort.postMessage(msg);
require(workerData.file);
parentPort.on('message', (data) => globalThis.onmessage({data}));
`;

class NodeWorker {
  constructor(file) {
    this.onmessage = null;
    this.thread = new workerThreads.Worker(BOOT, {
      eval: true,
      workerData: {file: path.resolve(SRC, file), ws: WS},
    });
    this.thread.on('message', (data) => this.onmessage && this.onmessage({data}));
    this.thread.on('error', (err) => this.onmessage &&
      this.onmessage({data: {MsgType: 'error', Error: String(err)}}));
  }
  postMessage(data) {
    this.thread.postMessage(data);
  }
  terminate() {
    this.thread.terminate();
  }
}
globalThis.Worker = NodeWorker;

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function rate(bytes, elapsedUs) {
  return elapsedUs > 0 ? 8 * bytes / elapsedUs : null; // bytes/µs × 8 = Mbit/s
}

async function main() {
  const server = arg('--server');
  const locate = arg('--locate');
  const metadata = {client_name: 'ispeed-ndt7-harness', client_version: '1.0.0'};
  const extra = arg('--metadata');
  if (extra) Object.assign(metadata, JSON.parse(extra));
  const config = {
    protocol: 'ws',
    metadata,
    mlabDataPolicyInapplicable: true,
    downloadworkerfile: 'ndt7-download-worker.js',
    uploadworkerfile: 'ndt7-upload-worker.js',
  };
  if (server) config.server = server;
  if (locate) config.loadbalancer = locate;

  const out = {errors: [], serverMessages: {download: 0, upload: 0}, connectionInfo: {}};
  const last = {download: {}, upload: {}};
  const onMeasurement = (kind) => (m) => {
    if (m.Source === 'server') {
      out.serverMessages[kind] += 1;
      last[kind].server = m.Data;
      if (m.Data.ConnectionInfo) out.connectionInfo[kind] = m.Data.ConnectionInfo;
    } else {
      last[kind].client = m.Data;
    }
  };
  const callbacks = {
    error: (err) => out.errors.push(String(err)),
    serverChosen: (choice) => { out.serverChosen = choice.machine; },
    downloadMeasurement: onMeasurement('download'),
    uploadMeasurement: onMeasurement('upload'),
    downloadComplete: (d) => { last.download.complete = d; },
    uploadComplete: (d) => { last.upload.complete = d; },
  };
  const started = Date.now();
  const rc = await ndt7.test(config, callbacks);
  out.rc = rc;
  out.seconds = (Date.now() - started) / 1000;

  const down = last.download.server || {};
  const up = last.upload.server || {};
  const downClient = last.download.client || {};
  out.download = {
    // what ndt7 clients show: bytes received by the client over client time
    client_mbps: downClient.MeanClientMbps ?? null,
    server_app_mbps: down.AppInfo ? rate(down.AppInfo.NumBytes, down.AppInfo.ElapsedTime) : null,
    min_rtt_us: down.TCPInfo ? down.TCPInfo.MinRTT : null,
    tcpinfo_fields: down.TCPInfo ? Object.keys(down.TCPInfo).length : 0,
    bbr: Boolean(down.BBRInfo),
  };
  out.upload = {
    // spec: upload = 8 × TCPInfo.BytesReceived / TCPInfo.ElapsedTime from the server
    server_mbps: up.TCPInfo ? rate(up.TCPInfo.BytesReceived, up.TCPInfo.ElapsedTime) : null,
    server_app_bytes: up.AppInfo ? up.AppInfo.NumBytes : null,
    client_mbps: last.upload.client ? last.upload.client.MeanClientMbps : null,
    min_rtt_us: up.TCPInfo ? up.TCPInfo.MinRTT : null,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(typeof rc === 'number' ? rc : 99);
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({rc: 98, errors: [String(err && err.stack || err)]}) + '\n');
  process.exit(98);
});
