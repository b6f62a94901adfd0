// The test page: one Start button, live progress, then the figures and a shareable link.
// `?autostart=1` runs without a click and writes the final result JSON into #result.
// `?streams=N&duration=S` (bounded) are for automated checks; `?lang=en` switches language.
import {SpeedTest} from './engine.js';
import {translate} from './i18n.js';

const params = new URLSearchParams(location.search);
let lang = params.get('lang') === 'en' ? 'en' : 'vi';
let t = translate(lang);
const $ = (id) => document.getElementById(id);
const clamp = (v, lo, hi, dflt) => (Number.isFinite(v) ? Math.min(Math.max(v, lo), hi) : dflt);

// The device id is issued and signed by the server (spec/identity.md): fetched on this page's
// first test, presented back on later visits (the server answers with the id to keep), and kept
// in localStorage. No id (storage disabled, the server's allowance for this network spent, an
// older server): the test counts under the hashed IP address.
const DEVICE_KEY = 'ispeed-device-id';
let deviceIdConfirmed = null;

async function deviceId() {
  if (deviceIdConfirmed !== null) return deviceIdConfirmed;
  let held = '';
  try {
    held = localStorage.getItem(DEVICE_KEY) || '';
    localStorage.removeItem('ispeed-device');   // the old self-chosen id is no longer sent
  } catch (e) { /* storage disabled */ }
  try {
    const resp = await fetch('/api/v1/devices', {method: 'POST', cache: 'no-store',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(held ? {device_id: held} : {})});
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok || typeof answer.device_id !== 'string') return '';
    deviceIdConfirmed = answer.device_id;
    try {
      localStorage.setItem(DEVICE_KEY, answer.device_id);
    } catch (e) { /* storage disabled: the id serves this page only */ }
    return deviceIdConfirmed;
  } catch (e) {
    return '';
  }
}

function position() {
  if (!$('use-location').checked || !navigator.geolocation) return Promise.resolve(null);
  $('status').textContent = t.locating;
  return new Promise((resolve) => navigator.geolocation.getCurrentPosition(
      (p) => resolve({lat: p.coords.latitude, lon: p.coords.longitude, accuracy: p.coords.accuracy}),
      () => { $('status').textContent = t.noLocation; resolve(null); },
      {enableHighAccuracy: true, timeout: 10000, maximumAge: 60000}));
}

const fmt = (v, unit, digits = 1) => (v === null || v === undefined ? '–' : `${Number(v).toFixed(digits)} ${unit}`);

function show(result) {
  $('download-value').textContent = fmt(result.download_mbps, 'Mbps');
  $('upload-value').textContent = fmt(result.upload_mbps, 'Mbps');
  $('latency-value').textContent = fmt(result.latency_ms, 'ms', 2);
  $('jitter-value').textContent = fmt(result.jitter_ms, 'ms', 2);
  $('loaded-down-value').textContent = fmt(result.loaded_latency_down_ms, 'ms', 2);
  $('loaded-up-value').textContent = fmt(result.loaded_latency_up_ms, 'ms', 2);
  $('provider-value').textContent = result.provider || t.unknown;
  $('place-value').textContent = [result.commune_code, result.province_code].filter(Boolean).join(', ') || t.unknown;
  const link = $('share-link');
  link.href = result.result_url + (lang === 'en' ? '?lang=en' : '');
  link.textContent = location.origin + result.result_url;
  $('share').hidden = false;
}

function progress(p) {
  const label = p.phase === 'latency' ? t.latency : `${t[p.phase]}: ${p.mbps.toFixed(0)} Mbps`;
  $('status').textContent = label;
  $('bar').value = Math.min(1, p.elapsedS / p.durationS);
  if (p.phase === 'download') $('download-value').textContent = fmt(p.mbps, 'Mbps', 0);
  if (p.phase === 'upload') $('upload-value').textContent = fmt(p.mbps, 'Mbps', 0);
}

async function start() {
  const button = $('start');
  button.disabled = true;
  $('share').hidden = true;
  $('result').textContent = '';
  try {
    const test = new SpeedTest({
      streams: clamp(parseInt(params.get('streams'), 10), 1, 16, 4),
      durationS: clamp(parseFloat(params.get('duration')), 1, 30, 10),
      networkType: $('network-type').value,
      position: await position(),
      deviceId: await deviceId(),
      onProgress: progress,
    });
    const result = await test.run();
    show(result);
    $('status').textContent = '';
    $('result').textContent = JSON.stringify(result);
  } catch (err) {
    $('status').textContent = `${t.failed}: ${err.message}`;
    $('result').textContent = JSON.stringify({error: String(err.message || err)});
  } finally {
    button.disabled = false;
    button.textContent = t.again;
  }
}

$('start').addEventListener('click', start);
$('lang-switch').addEventListener('click', () => {
  lang = lang === 'vi' ? 'en' : 'vi';
  t = translate(lang);
  $('lang-switch').textContent = lang === 'vi' ? 'English' : 'Tiếng Việt';
});
const nt = params.get('network_type');
if (['fixed', 'mobile', '5g'].includes(nt)) $('network-type').value = nt;
if (params.get('autostart') === '1') start();
