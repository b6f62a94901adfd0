// The citizen's own history, kept in this browser only (localStorage), newest first, exportable as CSV.
// Each entry holds figures the server already has in the result; nothing else is sent anywhere.
const KEY = 'ispeed-history';
export const MAX_ENTRIES = 100;
export const CSV_COLUMNS = ['test_id', 'started_at', 'server_id', 'network_type', 'provider', 'place',
  'download_mbps', 'upload_mbps', 'latency_ms', 'jitter_ms', 'loaded_latency_down_ms', 'loaded_latency_up_ms',
  'loss_down_pct', 'loss_up_pct', 'rpm_down', 'rpm_up', 'valid', 'result_url'];

export function load() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || '[]');
    return Array.isArray(items) ? items.filter((e) => e && typeof e.test_id === 'string') : [];
  } catch (e) {
    return [];
  }
}

function save(items) {
  try {
    localStorage.setItem(KEY, JSON.stringify(items.slice(0, MAX_ENTRIES)));
  } catch (e) { /* storage disabled or full: the history is not kept */ }
}

// Adds (or replaces, by test id) one entry from a result and its view.
export function add(result, view) {
  const v = view || {};
  const pick = (k) => (v[k] ?? result[k] ?? null);
  const entry = {};
  for (const k of CSV_COLUMNS) entry[k] = pick(k);
  entry.started_at = v.started_at || new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  entry.started_local = v.started_local || '';
  entry.place = v.place_name || [result.commune_code, result.province_code].filter(Boolean).join(', ');
  entry.valid = result.valid !== false;
  const items = [entry, ...load().filter((e) => e.test_id !== entry.test_id)];
  save(items);
  return items;
}

export function clear() {
  try { localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
}

const cell = (v) => {
  let text = v === null || v === undefined ? '' : String(v);
  if (/^[=+@]/.test(text)) text = `'${text}`;   // never a formula in a spreadsheet
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

export function csv(items) {
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of items) lines.push(CSV_COLUMNS.map((k) => cell(e[k])).join(','));
  return lines.join('\r\n') + '\r\n';
}
