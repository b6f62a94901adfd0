// The live chart: throughput of every 100 ms sample (download, then upload) and the latency probes
// (idle, then under load), phase by phase on one time axis. Plain SVG, redrawn from its state.
const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 250;
const LEFT = 46;
const RIGHT = 8;
const TOP = 8;
const SPEED_H = 150;          // throughput panel: y from TOP to TOP + SPEED_H
const LAT_TOP = 188;          // latency panel
const LAT_H = 44;
const COLORS = {download: '#0d47a1', upload: '#6a1b9a', latency: '#b00d26'};

function nice(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

const fmt = (v) => (v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1));

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

export class LiveChart {
  constructor(svg) {
    this.svg = svg;
    this.reset(10);
  }

  // totalS: the expected length of the whole test (idle probes + both phases), the x axis.
  reset(totalS) {
    this.totalS = totalS;
    this.points = {download: [], upload: []};   // [t, mbps]
    this.rtts = [];                              // [t, ms]
    this.phases = [];                            // [name, t0]
    this.draw();
  }

  phase(name, t, label) {
    if (!this.phases.length || this.phases[this.phases.length - 1][0] !== name) this.phases.push([name, t, label || '']);
  }

  sample(name, t, mbps) {
    this.points[name].push([t, mbps]);
    this.totalS = Math.max(this.totalS, t);
  }

  rtt(t, ms) {
    this.rtts.push([t, ms]);
    this.totalS = Math.max(this.totalS, t);
  }

  draw() {
    // drawn in the element's own pixels, so labels stay readable on a phone
    const W = Math.max(280, Math.round(this.svg.getBoundingClientRect().width) || 640);
    this.svg.setAttribute('viewBox', `0 0 ${W} ${HEIGHT}`);
    const keep = this.svg.querySelector('title');
    this.svg.replaceChildren(...(keep ? [keep] : []));
    const g = el('g', {'aria-hidden': 'true'});
    const x = (t) => LEFT + (W - LEFT - RIGHT) * Math.min(t / this.totalS, 1);
    const all = [...this.points.download, ...this.points.upload].map((p) => p[1]);
    const top = nice(Math.max(1, ...all));
    const y = (v) => TOP + SPEED_H * (1 - v / top);
    for (const frac of [0, 0.5, 1]) {
      const v = top * frac;
      g.append(el('line', {x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v), stroke: '#e3e6ea'}));
      g.append(el('text', {x: LEFT - 4, y: y(v) + 4, 'text-anchor': 'end'}, fmt(v)));
    }
    g.append(el('text', {x: LEFT + 4, y: TOP + 11}, 'Mbps'));
    for (const [, t0, label] of this.phases) {
      g.append(el('line', {x1: x(t0), x2: x(t0), y1: TOP, y2: LAT_TOP + LAT_H, stroke: '#9aa5b1', 'stroke-dasharray': '3 3'}));
      if (label) g.append(el('text', {x: x(t0) + 3, y: TOP + SPEED_H + 14}, label));
    }
    for (const name of ['download', 'upload']) {
      const pts = this.points[name];
      if (pts.length > 1) {
        g.append(el('polyline', {points: pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
          fill: 'none', stroke: COLORS[name], 'stroke-width': 2, 'stroke-linejoin': 'round'}));
      }
    }
    const latTop = nice(Math.max(1, ...this.rtts.map((r) => r[1])));
    const ly = (v) => LAT_TOP + LAT_H * (1 - Math.min(v, latTop) / latTop);
    g.append(el('line', {x1: LEFT, x2: W - RIGHT, y1: LAT_TOP + LAT_H, y2: LAT_TOP + LAT_H, stroke: '#c5ccd3'}));
    g.append(el('text', {x: LEFT - 4, y: LAT_TOP + 4, 'text-anchor': 'end'}, fmt(latTop)));
    g.append(el('text', {x: LEFT - 4, y: LAT_TOP + LAT_H + 4, 'text-anchor': 'end'}, '0'));
    g.append(el('text', {x: LEFT + 4, y: LAT_TOP + 9}, 'ms'));
    for (const [t, v] of this.rtts) g.append(el('circle', {cx: x(t).toFixed(1), cy: ly(v).toFixed(1), r: 2, fill: COLORS.latency}));
    g.append(el('text', {x: W - RIGHT, y: HEIGHT - 3, 'text-anchor': 'end'}, `${Math.round(this.totalS)} s`));
    this.svg.append(g);
  }

  peaks() {
    const max = (a) => (a.length ? Math.max(...a.map((p) => p[1])) : 0);
    const loaded = this.rtts.filter(([t]) => this.phases.length > 1 && t >= this.phases[1][1]).map((r) => r[1]).sort((a, b) => a - b);
    return {down: max(this.points.download), up: max(this.points.upload), lat: loaded.length ? loaded[loaded.length >> 1] : 0};
  }
}
