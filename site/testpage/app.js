// The test page: Start (and Cancel), a live chart and phase indicator, then the figures with names,
// the comparison with the published month, ratings for everyday uses, the shareable link and image,
// and the history kept in this browser (CSV export, signed evidence for a complaint).
// `?autostart=1` runs without a click and writes the final result JSON into #result.
// `?streams=N&duration=S` (bounded) are for automated checks; `?lang=en` switches language.
import {SpeedTest} from './engine.js';
import {label as rpmLabel} from './rpm.js';
import {translate, format} from './i18n.js';
import {LiveChart} from './chart.js';
import * as history from './history.js';

const params = new URLSearchParams(location.search);
let lang = params.get('lang') === 'en' ? 'en' : 'vi';
let t = translate(lang);
const $ = (id) => document.getElementById(id);
const clamp = (v, lo, hi, dflt) => (Number.isFinite(v) ? Math.min(Math.max(v, lo), hi) : dflt);
const chart = new LiveChart($('chart'));
const EVIDENCE_TESTS = 10;
const LOCATION_KEY = 'ispeed-use-location';
let test = null;
let last = null;   // {result, view} of the last test on this page

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

const num = (v, digits = 1) => {
  const text = Number(v).toFixed(Math.abs(v) >= 1000 ? 0 : digits);
  return lang === 'vi' ? text.replace('.', ',') : text;
};
const fmt = (v, unit, digits = 1) => (v === null || v === undefined ? '–' : `${num(v, digits)} ${unit}`);
const worst = (a, b, pick) => {
  const present = [a, b].filter((v) => v !== null && v !== undefined);
  return present.length ? pick(...present) : null;
};

function showFigures(result, view) {
  const r = {...result, ...(view || {})};
  $('download-value').textContent = fmt(r.download_mbps, 'Mbps');
  $('upload-value').textContent = fmt(r.upload_mbps, 'Mbps');
  $('latency-value').textContent = fmt(r.latency_ms, 'ms', 1);
  $('jitter-value').textContent = fmt(r.jitter_ms, 'ms', 1);
  $('loaded-down-value').textContent = fmt(r.loaded_latency_down_ms, 'ms', 1);
  $('loaded-up-value').textContent = fmt(r.loaded_latency_up_ms, 'ms', 1);
  const loss = worst(r.loss_down_pct, r.loss_up_pct, Math.max);
  const rpm = worst(r.rpm_down, r.rpm_up, Math.min);
  // the page cannot measure loss (no UDP from a browser): it says so, and where to get it
  $('loss-value').textContent = loss === null ? t.lossInBrowser : fmt(loss, '%', 1);
  $('rpm-value').textContent = rpm === null ? t.notMeasured : `${Math.round(rpm)} RPM`;
  $('loss-value').classList.toggle('na', loss === null);
  $('loss-value').classList.toggle('sentence', loss === null);
  $('rpm-value').classList.toggle('na', rpm === null);
  const cls = rpmLabel(rpm);   // the draft's class of the worse direction
  $('rpm-class').textContent = cls ? t[`rpm${cls}`] : '';
  $('rpm-class').dataset.class = cls || '';
  $('rpm-class').hidden = !cls;
  $('provider-value').textContent = r.provider || t.unknown;
  $('place-value').textContent = r.place_name || [r.commune_code, r.province_code].filter(Boolean).join(', ') || t.unknown;
}

function item(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showSummary(result, view) {
  const where = view ? [view.provider || t.unknown, view.place_name || t.unknown, view.network_type_name,
    `${view.started_local} (${lang === 'vi' ? 'giờ Việt Nam' : 'Vietnam time'})`] : [];
  $('where').textContent = where.join(' · ');
  const cmp = $('compare');
  cmp.replaceChildren();
  const c = view && view.compare;
  if (c && c.sentences && c.sentences.length) {
    for (const s of c.sentences) cmp.append(item('p', 'sentence', s));
    if (c.note) cmp.append(item('p', 'note', c.note));
  } else {
    cmp.append(item('p', 'note', t.noCompare));
  }
  const list = $('ratings');
  list.replaceChildren();
  for (const r of (view && view.ratings) || []) {
    const li = item('li', `g-${r.grade}`);
    li.dataset.use = r.use;
    li.dataset.grade = r.grade;
    li.append(item('span', 'use', r.name), item('span', 'grade', r.grade_name));
    const why = [];
    if (r.limits.length) why.push(`${t.limitedBy}: ${r.limits.map((l) => l.text).join('; ')}`);
    if (r.not_measured.length) why.push(`${t.notMeasuredList}: ${r.not_measured.join(', ')}`);
    if (why.length) li.append(item('span', 'why', why.join('. ')));
    list.append(li);
  }
  const suffix = lang === 'en' ? '?lang=en' : '';
  const link = $('share-link');
  link.href = result.result_url + suffix;
  link.textContent = location.origin + result.result_url;
  const image = $('share-image-link');
  image.href = `/r/${result.test_id}.png${suffix}`;
  image.setAttribute('download', `ispeed-${result.test_id}.png`);
  $('share').hidden = false;
  $('summary').hidden = false;
}

async function fetchView(testId) {
  try {
    const resp = await fetch(`/r/${encodeURIComponent(testId)}.json?lang=${lang}`, {cache: 'no-store'});
    return resp.ok ? await resp.json() : null;
  } catch (e) {
    return null;
  }
}

function showHistory() {
  const items = history.load();
  const body = $('history').querySelector('tbody');
  body.replaceChildren();
  for (const e of items.slice(0, 10)) {
    const tr = document.createElement('tr');
    const when = item('td');
    const a = item('a');
    for (const part of (e.started_local || e.started_at).split(/[ T]/)) a.append(item('span', 'nowrap', part), ' ');
    a.href = `/r/${encodeURIComponent(e.test_id)}${lang === 'en' ? '?lang=en' : ''}`;
    when.append(a);
    tr.append(when, item('td', 'num', e.download_mbps === null ? '–' : num(e.download_mbps)),
      item('td', 'num', e.upload_mbps === null ? '–' : num(e.upload_mbps)),
      item('td', 'num', e.latency_ms === null ? '–' : num(e.latency_ms)), item('td', '', e.provider || t.unknown));
    body.append(tr);
  }
  $('history').hidden = items.length === 0;
  $('history-empty').hidden = items.length > 0;
  for (const id of ['history-csv', 'evidence-create', 'history-clear']) $(id).disabled = items.length === 0;
}

const PHASES = ['latency', 'download', 'upload', 'done'];
function markPhase(name) {
  const at = PHASES.indexOf(name);
  for (const li of $('phases').children) {
    const i = PHASES.indexOf(li.dataset.phase);
    li.classList.toggle('done', i < at || name === 'done');
    if (i === at && name !== 'done') li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  }
}

let t0 = 0;
let phaseNow = '';
let drawing = false;
function progress(p) {
  const now = (performance.now() - t0) / 1000;
  if (p.phase !== phaseNow) {
    phaseNow = p.phase;
    markPhase(p.phase);
    chart.phase(p.phase, now, p.phase === 'latency' ? '' : t[p.phase]);
  }
  for (const rtt of p.rtts || []) chart.rtt(now, rtt);
  if (p.phase === 'latency') {
    $('status').textContent = t.latency;
    $('bar').value = 0.05 * p.elapsedS;
  } else {
    chart.sample(p.phase, now, p.mbps);
    $('status').textContent = `${t[p.phase]}: ${num(p.mbps, 0)} Mbps`;
    const done = Math.min(1, p.elapsedS / p.durationS);
    $('bar').value = 0.05 + 0.475 * (p.phase === 'upload' ? 1 + done : done);
    $(`${p.phase}-value`).textContent = fmt(p.mbps, 'Mbps', 0);
  }
  if (!drawing) {   // at most one redraw a frame, never between a sample and the next read of the streams
    drawing = true;
    requestAnimationFrame(() => { drawing = false; chart.draw(); });
  }
}

async function start() {
  const button = $('start');
  button.disabled = true;
  $('summary').hidden = true;
  $('result').textContent = '';
  $('evidence-status').textContent = '';
  const durationS = clamp(parseFloat(params.get('duration')), 1, 30, 10);
  chart.reset(1 + 2 * durationS);
  phaseNow = '';
  try {
    test = new SpeedTest({
      streams: clamp(parseInt(params.get('streams'), 10), 1, 16, 4),
      durationS,
      networkType: $('network-type').value,
      position: await position(),
      deviceId: await deviceId(),
      onProgress: progress,
    });
    $('cancel').hidden = false;
    if (document.activeElement === button || document.activeElement === document.body) $('cancel').focus();
    t0 = performance.now();
    const result = await test.run();
    $('cancel').hidden = true;
    markPhase('done');
    $('bar').value = 1;
    $('status').textContent = t.submitting;
    const view = await fetchView(result.test_id);
    last = {result, view};
    showFigures(result, view);
    showSummary(result, view);
    history.add(result, view);
    showHistory();
    const peaks = chart.peaks();
    $('chart-title').textContent = format(t.chartDone, {down: num(peaks.down, 0), up: num(peaks.up, 0), lat: num(peaks.lat, 0)});
    $('status').textContent = '';
    $('summary-h').focus();   // the result is what the page is for: screen readers and keyboards land on it
    const extra = view ? {province_name: view.province_name, commune_name: view.commune_name,
      place_name: view.place_name, started_at: view.started_at, comparison: view.compare,
      ratings: view.ratings.map((r) => ({use: r.use, grade: r.grade}))} : {};
    $('result').textContent = JSON.stringify({...result, ...extra});
  } catch (err) {
    $('cancel').hidden = true;
    const cancelled = err && err.name === 'AbortError';
    $('status').textContent = cancelled ? t.cancelled : `${t.failed}: ${err.message}`;
    $('result').textContent = JSON.stringify(cancelled ? {error: 'cancelled', cancelled: true} : {error: String(err.message || err)});
    markPhase('');
  } finally {
    test = null;
    button.disabled = false;
    button.textContent = t.again;
  }
}

function cancel() {
  if (!test) return;
  test.cancel();
  $('cancel').hidden = true;
  $('status').textContent = t.cancelled;
  $('start').focus();
}

function exportCsv() {
  const blob = new Blob([history.csv(history.load())], {type: 'text/csv;charset=utf-8'});
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'ispeed-history.csv';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function createEvidence() {
  const status = $('evidence-status');
  status.textContent = t.evidenceMaking;
  const ids = history.load().slice(0, EVIDENCE_TESTS).map((e) => e.test_id);
  try {
    const resp = await fetch('/api/v1/evidence', {method: 'POST', cache: 'no-store',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify({test_ids: ids})});
    const answer = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(answer.error || `HTTP ${resp.status}`);
    const a = item('a', '', t.evidenceReady);
    a.id = 'evidence-link';
    a.href = answer.verify_url + (lang === 'en' ? '?lang=en' : '');
    status.replaceChildren(a);
    a.focus();
  } catch (err) {
    status.textContent = `${t.evidenceFailed}: ${err.message}`;
  }
}

$('start').addEventListener('click', start);
$('cancel').addEventListener('click', cancel);
$('history-csv').addEventListener('click', exportCsv);
$('evidence-create').addEventListener('click', createEvidence);
$('history-clear').addEventListener('click', () => {
  if (window.confirm(t.confirmClear)) {
    history.clear();
    showHistory();
  }
});
$('lang-switch').addEventListener('click', async () => {
  lang = lang === 'vi' ? 'en' : 'vi';
  t = translate(lang);
  const other = $('lang-switch');
  other.textContent = lang === 'vi' ? 'English' : 'Tiếng Việt';
  other.lang = lang === 'vi' ? 'en' : 'vi';
  if (!$('start').disabled && last) $('start').textContent = t.again;
  for (const a of document.querySelectorAll('a[href^="/site/"]')) {   // the published site in the same language
    const path = a.getAttribute('href').replace(/^\/site\/(en\/)?/, '');
    a.setAttribute('href', `/site/${lang === 'en' ? 'en/' : ''}${path}`);
  }
  showHistory();
  if (last) {
    last.view = await fetchView(last.result.test_id) || last.view;
    showFigures(last.result, last.view);
    showSummary(last.result, last.view);
  }
});
try {
  $('use-location').checked = localStorage.getItem(LOCATION_KEY) === '1';
} catch (e) { /* storage disabled */ }
$('use-location').addEventListener('change', () => {
  try { localStorage.setItem(LOCATION_KEY, $('use-location').checked ? '1' : '0'); } catch (e) { /* not kept */ }
});
const nt = params.get('network_type');
if (['fixed', 'mobile', '5g'].includes(nt)) $('network-type').value = nt;
showHistory();
if (params.get('autostart') === '1') start();
