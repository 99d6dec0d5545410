// The agentloop dashboard: snapshots arrive over Server-Sent Events
// ("events": a "history" event, then a "snapshot" per interval) and are
// plotted on canvases drawn here; nothing is fetched from anywhere else.
'use strict';
(() => {
  const body = document.body;
  const maxPoints = Math.max(2, parseInt(body.dataset.points, 10) || 300);
  const snaps = [];
  let events = 0, received = 0, dirty = false;

  const palette = ['#3366cc', '#dc3912', '#ff9900', '#109618', '#990099', '#0099c6', '#dd4477',
    '#66aa00', '#b82e2e', '#316395', '#994499', '#22aa99', '#aaaa11', '#6633cc', '#e67300'];
  const colours = new Map();
  const colour = name => {
    if (!colours.has(name)) colours.set(name, palette[colours.size % palette.length]);
    return colours.get(name);
  };

  // ---- formatting ----
  const si = (v, unit) => {
    if (!isFinite(v)) return '–';
    const a = Math.abs(v);
    const steps = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
    for (const [f, p] of steps) if (a >= f) return (v / f).toFixed(a >= 10 * f ? 0 : 1) + ' ' + p + (unit || '');
    return (a >= 10 || a === 0 ? v.toFixed(0) : v.toFixed(a >= 1 ? 1 : 2)) + (unit ? ' ' + unit : '');
  };
  const bytes = v => {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
  };
  const secs = v => {
    if (!(v > 0)) return '0';
    if (v < 1e-6) return (v * 1e9).toFixed(0) + ' ns';
    if (v < 1e-3) return (v * 1e6).toFixed(v < 1e-5 ? 1 : 0) + ' µs';
    if (v < 1) return (v * 1e3).toFixed(v < 1e-2 ? 1 : 0) + ' ms';
    return v.toFixed(2) + ' s';
  };
  const pct = v => (v * 100).toFixed(0) + '%';

  // ---- plots ----
  // plot draws series [{name, points: [[t, v]], dash}] on canvas, with a
  // y axis from 0 (or the given max) and a legend.
  function plot(id, series, fmt, fixedMax) {
    const c = document.getElementById(id);
    if (!c) return;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 300, h = c.clientHeight || 150;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const left = 58, right = 6, top = 6, bottom = 16;
    let t0 = Infinity, t1 = -Infinity, vmax = fixedMax || 0;
    for (const s of series) for (const [t, v] of s.points) {
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
      if (!fixedMax && v > vmax) vmax = v;
    }
    if (!isFinite(t0)) { t0 = Date.now() - 60000; t1 = Date.now(); }
    if (t1 - t0 < 1000) t0 = t1 - 1000;
    if (!(vmax > 0)) vmax = 1;
    const x = t => left + (t - t0) / (t1 - t0) * (w - left - right);
    const y = v => top + (1 - v / vmax) * (h - top - bottom);
    g.font = '10px system-ui, sans-serif';
    g.strokeStyle = '#e3e6eb';
    g.fillStyle = '#778';
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = vmax * i / 4, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
      g.fillText(fmt(v), left - 4, yy);
    }
    g.textAlign = 'left';
    g.textBaseline = 'alphabetic';
    g.fillText('-' + Math.round((t1 - t0) / 1000) + ' s', left, h - 3);
    g.textAlign = 'right';
    g.fillText('now', w - right, h - 3);
    for (const s of series) {
      if (s.points.length === 0) continue;
      g.strokeStyle = colour(s.name);
      g.lineWidth = 1.5;
      g.setLineDash(s.dash ? [4, 3] : []);
      g.beginPath();
      s.points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
      if (s.points.length === 1) g.lineTo(x(s.points[0][0]) + 2, y(s.points[0][1]));
      g.stroke();
    }
    g.setLineDash([]);
    // legend
    g.textAlign = 'left';
    g.textBaseline = 'top';
    let lx = left + 4, ly = top + 2;
    const seen = new Set();
    for (const s of series) {
      const name = s.legend || s.name;
      if (seen.has(name)) continue;
      seen.add(name);
      const tw = g.measureText(name).width + 16;
      if (lx + tw > w - right) { lx = left + 4; ly += 12; }
      g.fillStyle = colour(s.name);
      g.fillRect(lx, ly + 3, 8, 3);
      g.fillStyle = '#334';
      g.fillText(name, lx + 10, ly);
      lx += tw;
    }
  }

  // seriesOf builds one series per key from the snapshots: items(s) lists
  // [key, value] pairs of one snapshot.
  function seriesOf(items) {
    const m = new Map();
    for (const s of snaps) for (const [k, v] of items(s)) {
      if (!m.has(k)) m.set(k, []);
      m.get(k).push([s.t, v]);
    }
    return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([name, points]) => ({ name, points }));
  }

  // ---- tables (text only: names are set as textContent, never markup) ----
  function rows(tableId, data, cells) {
    const tb = document.querySelector('#' + tableId + ' tbody');
    const frag = document.createDocumentFragment();
    for (const d of data) {
      const tr = document.createElement('tr');
      for (const v of cells(d)) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tb.replaceChildren(frag);
  }

  function render() {
    dirty = false;
    const last = snaps[snaps.length - 1];
    if (!last) return;
    const loopName = l => 'loop ' + l.loop;
    plot('plot-util', seriesOf(s => s.loops.map(l => [loopName(l), l.util])), pct, 1);
    plot('plot-inbox', seriesOf(s => s.loops.map(l => [loopName(l), l.inbox])), v => si(v));
    plot('plot-runnable', seriesOf(s => s.loops.map(l => [loopName(l), l.runnable])), v => si(v));
    plot('plot-rate', seriesOf(s => s.types.map(t => [t.type, t.rate])), v => si(v));
    plot('plot-queued', seriesOf(s => s.types.map(t => [t.type, t.queued])), v => si(v));
    const p99 = seriesOf(s => s.types.map(t => [t.type, t.p99]));
    const p50 = seriesOf(s => s.types.map(t => [t.type, t.p50])).map(x => Object.assign(x, { dash: true, legend: x.name }));
    plot('plot-latency', p99.concat(p50), secs);
    plot('plot-gc', seriesOf(s => [['GC pause', s.memory.gcPauseMax]]), secs);
    plot('plot-dead', seriesOf(s => s.dead.map(d => [d.reason, d.rate])), v => si(v));
    plot('plot-heap', seriesOf(s => [['heap', s.memory.heap], ['goal', s.memory.heapGoal]]), bytes);
    plot('plot-buffers', seriesOf(s => (s.memory.buffers ? [['live buffers', s.memory.buffers.live]] : [])), v => si(v));

    document.getElementById('summary').textContent = last.agents + ' agents · ' + last.loops.length + ' loops · ' +
      last.deadLetters + ' dead letters · ' + last.panics + ' panics · ' + last.memory.goroutines + ' goroutines';

    rows('table-types', last.types, t => [t.type, t.agents, t.priority,
      t.weight.toFixed(2) + ' (' + t.weightLo.toFixed(2) + '–' + t.weightHi.toFixed(2) + ')',
      si(t.rate), t.queued, secs(t.p50), secs(t.p99), si(t.dropRate), t.dropped, t.restarts,
      t.capacity + ' ' + t.overflow]);

    const types = last.types.map(t => t.type);
    const head = document.querySelector('#table-loopq thead');
    const hr = document.createElement('tr');
    for (const n of ['loop', 'utilisation'].concat(types)) {
      const th = document.createElement('th');
      th.textContent = n;
      hr.appendChild(th);
    }
    head.replaceChildren(hr);
    rows('table-loopq', last.loops, l => [l.loop, pct(l.util)].concat(types.map(t => l.queued[t] || 0)));

    rows('table-dead', last.dead, d => [d.reason, si(d.rate), d.total]);
    rows('table-mailboxes', last.mailboxes, m => [m.agent, m.loop, m.queued, bytes(m.bytes), m.weight.toFixed(2)]);
    document.getElementById('mailboxes-stale').hidden = !last.mailboxesStale;
    const pools = last.memory.pools.map(p => [p.type + ' records', p.hits, p.misses, p.puts, p.hits + p.misses ? pct(p.hits / (p.hits + p.misses)) : '–']);
    const b = last.memory.buffers;
    if (b) pools.push(['payload buffers', b.gets - b.allocs, b.allocs, b.returns, b.gets ? pct((b.gets - b.allocs) / b.gets) : '–']);
    rows('table-pools', pools, r => r);
  }

  function add(s) {
    snaps.push(s);
    if (snaps.length > maxPoints) snaps.splice(0, snaps.length - maxPoints);
    received++;
  }
  function changed() {
    events++;
    body.dataset.events = String(events);
    body.dataset.snapshots = String(received);
    if (!dirty) {
      dirty = true;
      requestAnimationFrame(render);
    }
  }

  // ---- the events stream ----
  const status = document.getElementById('status');
  const es = new EventSource('events');
  es.addEventListener('open', () => { status.textContent = 'live'; status.className = 'status live'; });
  es.addEventListener('error', () => { status.textContent = 'disconnected, retrying…'; status.className = 'status down'; });
  es.addEventListener('history', ev => {
    snaps.length = 0;
    for (const s of JSON.parse(ev.data)) add(s);
    changed();
  });
  es.addEventListener('snapshot', ev => {
    add(JSON.parse(ev.data));
    changed();
  });
  window.addEventListener('resize', () => { if (!dirty) { dirty = true; requestAnimationFrame(render); } });

  // ---- the topic stream ----
  let topicES = null;
  const list = document.getElementById('stream-list');
  const sstatus = document.getElementById('stream-status');
  const line = text => {
    const li = document.createElement('li');
    li.textContent = text;
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
  };
  document.getElementById('stream-form').addEventListener('submit', ev => {
    ev.preventDefault();
    if (topicES) topicES.close();
    list.replaceChildren();
    const pattern = document.getElementById('stream-topic').value.trim();
    if (!pattern) return;
    topicES = new EventSource('stream?topic=' + encodeURIComponent(pattern));
    topicES.addEventListener('ready', () => { sstatus.textContent = 'watching ' + pattern; });
    topicES.addEventListener('dropped', e => {
      const d = JSON.parse(e.data);
      line('… ' + d.dropped + ' messages dropped (reader too slow), ' + d.total + ' in all');
    });
    topicES.addEventListener('message', e => {
      const m = JSON.parse(e.data);
      line('#' + m.seq + ' ' + m.topic + ' ' + (m.encoding === 'base64' ? '[base64] ' : '') + m.payload);
    });
    topicES.addEventListener('error', () => {
      sstatus.textContent = 'stream refused or closed (bad pattern? too many streams?)';
      topicES.close();
    });
  });
})();
