package profiler

import (
	"crypto/sha256"
	"encoding/base64"
)

// The flame graph page is pageHead, the JSON data, then pageTail. Nothing in
// them depends on the profile: names and the title reach the page only as
// JSON, and the script puts them in the DOM with textContent. The
// Content-Security-Policy lets only this script and this style run (by
// hash) and forbids every fetch, so the page works offline and an injected
// element could do nothing.
var pageHead, pageTail = makePage()

func makePage() (head, tail string) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	head = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src ` + hash(pageScript) + `; style-src ` + hash(pageStyle) + `; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flame graph</title>
<link rel="icon" href="data:,">
<style>` + pageStyle + `</style>
</head>
<body>
<header>
<h1 id="title">Flame graph</h1>
<div class="controls">
<label>Sample type <select id="stype"></select></label>
<label>Agent type <select id="agent"></select></label>
<label title="In the view of one agent type, the runtime's and the engine's frames below each handler are hidden unless this is checked"><input id="engine" type="checkbox"> Show engine frames</label>
<input id="search" type="search" placeholder="Search (regexp)" autocomplete="off" spellcheck="false">
<span id="matchinfo"></span>
<button id="reset" type="button">Reset zoom</button>
<button id="orient" type="button"></button>
</div>
<div id="info"></div>
</header>
<main>
<div id="graph"><div id="flame"></div>
<div id="details"></div></div>
<aside id="totals"><table>
<caption>Agent types</caption>
<thead><tr><th scope="col">agent type</th><th scope="col" class="num">samples</th><th scope="col" class="num">share</th><th scope="col">top frames (self)</th></tr></thead>
<tbody id="totalsbody"></tbody>
</table></aside>
</main>
<script type="application/json" id="flamedata">`
	tail = `</script>
<script>` + pageScript + `</script>
</body>
</html>
`
	return head, tail
}

const pageStyle = `
*{box-sizing:border-box}
body{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fff}
header{position:sticky;top:0;z-index:2;padding:8px 12px;background:#f6f6f6;border-bottom:1px solid #ddd}
h1{margin:0 0 6px;font-size:16px;font-weight:600}
.controls{display:flex;flex-wrap:wrap;align-items:center;gap:6px 14px}
#search{width:18em}
#matchinfo{min-width:9em;color:#7b1fa2;font-weight:600}
#info{margin-top:4px;color:#555}
main{display:flex;align-items:flex-start;gap:12px;margin:8px 12px}
#graph{flex:1 1 auto;min-width:0}
#flame{position:relative;overflow:hidden}
.f{position:absolute;height:17px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;text-indent:3px;
  font:11px/17px ui-monospace,Menlo,Consolas,monospace;color:#111;cursor:pointer;box-shadow:inset -1px 0 #fff}
.f:hover{outline:1px solid #222;z-index:1}
.f.anc{opacity:.5}
.f.match{background:#e040fb!important}
#details{min-height:1.5em;margin:4px 0 12px;font:12px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
#totals{flex:0 0 32em;max-width:45%}
#totals table{width:100%;border-collapse:collapse;font-size:12px}
#totals caption{text-align:left;font-weight:600;padding:0 0 4px}
#totals th,#totals td{padding:2px 6px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
#totals .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
#totals tbody tr{cursor:pointer}
#totals tbody tr:hover{background:#f0f0f0}
#totals tr.sel{background:#fff3c4}
#totals .top{font:11px ui-monospace,Menlo,Consolas,monospace;max-width:19em}
#totals .tf{display:flex;gap:6px}
#totals .tf .share{flex:none;width:4.2em;text-align:right;font-variant-numeric:tabular-nums}
#totals .tf .fn{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
`

const pageScript = `
(function () {
'use strict';
const D = JSON.parse(document.getElementById('flamedata').textContent);
const T = D.sampleTypes.length, G = D.groups.length;
// Sample types name their type and unit by index in D.names.
const types = D.sampleTypes.map(function (t) { return {type: D.names[t.type], unit: D.names[t.unit]}; });
const H = 18;      // px per level
const MIN = 1e-4;  // boxes narrower than this share of the view are not drawn
const $ = function (id) { return document.getElementById(id); };
const flame = $('flame'), details = $('details'), matchinfo = $('matchinfo'), info = $('info');
// D.self stays sparse (node, group, one value per type) so that memory
// grows with the samples, not with nodes times groups.
const stride = 2 + T;

// A call tree: the whole profile, or the labelled samples from their
// handlers on (D.lean), which the view of one agent type shows while the
// engine's frames are hidden.
function tree(parent, name, self) {
  const N = parent.length, kids = [], depth = new Int32Array(N);
  for (let n = 0; n < N; n++) kids.push([]);
  for (let n = 1; n < N; n++) { kids[parent[n]].push(n); depth[n] = depth[parent[n]] + 1; }
  return {N: N, parent: parent, name: name, self: self, kids: kids, depth: depth, cache: new Map()};
}
const fullTree = tree(D.parent, D.name, D.self);
const leanTree = D.lean.parent.length ? tree(D.lean.parent, D.lean.name, D.lean.self) : null;

const st = {type: D.defaultType, group: -1, zoom: 0, icicle: D.icicle, match: null, engine: false};

// lean reports whether the view cuts the engine's frames: one agent type
// is shown and the engine's frames are not asked for.
function lean() { return !st.engine && st.group >= 0 && D.groups[st.group] !== '' && leanTree !== null; }
function cur() { return lean() ? leanTree : fullTree; }

// totals returns, for the current type and group, each node's total and its
// left edge in samples; parents precede children, so one pass each way.
function totals(t) {
  const key = st.type + ':' + st.group;
  let c = t.cache.get(key);
  if (c) return c;
  const N = t.N, tot = new Float64Array(N), x = new Float64Array(N), s = t.self;
  for (let k = 0; k + stride <= s.length; k += stride) {
    if (st.group < 0 || s[k + 1] === st.group) tot[s[k]] += s[k + 2 + st.type];
  }
  for (let n = N - 1; n > 0; n--) tot[t.parent[n]] += tot[n];
  for (let n = 0; n < N; n++) {
    let left = x[n];
    for (const kid of t.kids[n]) { x[kid] = left; left += tot[kid]; }
  }
  c = {tot: tot, x: x};
  t.cache.set(key, c);
  return c;
}

function fmt(v) {
  const u = types[st.type].unit;
  const num = function (x, d) { return x.toLocaleString('en-US', {maximumFractionDigits: d}); };
  if (u === 'nanoseconds') {
    if (v >= 1e9) return num(v / 1e9, 2) + ' s';
    if (v >= 1e6) return num(v / 1e6, 2) + ' ms';
    if (v >= 1e3) return num(v / 1e3, 2) + ' \u00b5s';
    return num(v, 0) + ' ns';
  }
  if (u === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return num(v, i ? 2 : 0) + ' ' + units[i];
  }
  return num(v, 0) + (u && u !== 'count' ? ' ' + u : '');
}
function pct(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(2) + '%' : '0.00%'; }

function color(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  if (name.startsWith('runtime.') || name.startsWith('runtime/')) {
    return 'hsl(' + (190 + h % 30) + ',45%,' + (72 + h % 10) + '%)';
  }
  return 'hsl(' + (h % 55) + ',' + (75 + h % 20) + '%,' + (58 + (h >> 8) % 10) + '%)';
}

// full and short name a node's function: the full name is the title, the
// short one (package-relative, type arguments abbreviated) the text.
function full(t, n) { return D.names[t.name[n]]; }
function short(t, n) { return D.names[D.short[t.name[n]]]; }

function label(t, n, tot) {
  const z = st.zoom;
  let s = full(t, n) + '\n' + fmt(tot[n]) + ' (' + pct(tot[n], tot[0]) + ' of all';
  if (z !== 0) s += ', ' + pct(tot[n], tot[z]) + ' of the zoomed frame';
  return s + ')';
}

function render() {
  const t = cur(), c = totals(t), tot = c.tot, x = c.x;
  if (!(st.zoom < t.N && tot[st.zoom] > 0)) st.zoom = 0;
  const z = st.zoom, zx = x[z], zw = tot[z];
  const boxes = [];
  for (let a = t.parent[z]; a >= 0; a = t.parent[a]) boxes.push([a, 0, 1, true]);
  if (zw > 0) {
    const todo = [z];
    while (todo.length) {
      const n = todo.pop();
      const w = tot[n] / zw;
      if (!(w >= MIN)) continue;
      boxes.push([n, (x[n] - zx) / zw, w, false]);
      for (const kid of t.kids[n]) todo.push(kid);
    }
  }
  let maxd = 0;
  for (const b of boxes) maxd = Math.max(maxd, t.depth[b[0]]);
  const frag = document.createDocumentFragment();
  for (const b of boxes) {
    const n = b[0], name = full(t, n);
    const el = document.createElement('div');
    el.className = 'f' + (b[3] ? ' anc' : '') + (st.match && st.match[t.name[n]] && n !== 0 ? ' match' : '');
    el.dataset.n = String(n);
    el.style.left = (100 * b[1]) + '%';
    el.style.width = (100 * b[2]) + '%';
    el.style.top = ((st.icicle ? t.depth[n] : maxd - t.depth[n]) * H) + 'px';
    el.style.background = color(name);
    el.textContent = short(t, n);
    el.title = label(t, n, tot);
    frag.appendChild(el);
  }
  flame.replaceChildren(frag);
  flame.style.height = ((maxd + 1) * H) + 'px';

  const ty = types[st.type];
  let text = ty.type + ': ' + fmt(tot[0]) + ' in all';
  if (st.group >= 0) text += ' of agent type ' + groupName(st.group);
  if (lean()) text += ', from the handlers up (engine frames hidden)';
  if (z !== 0) text += ' \u00b7 zoomed on ' + short(t, z) + ' (' + pct(tot[z], tot[0]) + ')';
  info.textContent = text;
  $('orient').textContent = st.icicle ? 'Flip to flame' : 'Flip to icicle';
  engineBox.disabled = !(st.group >= 0 && D.groups[st.group] !== '' && leanTree !== null);
  showMatch(t, tot);
  showTotals();
}

// showMatch shows the share of samples under frames that match the search,
// counting a stack once even if several of its frames match.
function showMatch(t, tot) {
  if (!st.match) { matchinfo.textContent = ''; return; }
  const under = new Uint8Array(t.N);
  let sum = 0, frames = 0;
  for (let n = 1; n < t.N; n++) {
    const m = st.match[t.name[n]];
    if (under[t.parent[n]]) { under[n] = 1; if (m && tot[n] > 0) frames++; continue; }
    if (m && tot[n] > 0) { under[n] = 1; sum += tot[n]; frames++; }
  }
  matchinfo.textContent = 'Matched: ' + pct(sum, tot[0]) + ' (' + frames + (frames === 1 ? ' frame)' : ' frames)');
}

function setSearch(q) {
  if (q === '') { st.match = null; render(); return; }
  let re;
  try { re = new RegExp(q, 'i'); } catch (e) { re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i'); }
  st.match = D.names.map(function (s, i) { return re.test(s) || re.test(D.names[D.short[i]]); });
  render();
}

function groupName(g) { return D.groups[g] === '' ? '(no ' + D.labelKey + ')' : D.groups[g]; }

// The totals table: per agent type, its samples of the current sample
// type, its share of all, and the frames with the most self samples (from
// the handlers up unless the engine's frames are shown).
const TOP = 3;
const tcache = new Map();
function groupTotals() {
  const key = st.type + ':' + st.engine;
  let c = tcache.get(key);
  if (c) return c;
  const sum = new Float64Array(G), byName = [];
  for (let g = 0; g < G; g++) byName.push(new Map());
  let all = 0;
  for (let k = 0; k + stride <= D.self.length; k += stride) {
    const v = D.self[k + 2 + st.type];
    sum[D.self[k + 1]] += v;
    all += v;
  }
  for (let g = 0; g < G; g++) {
    const t = !st.engine && D.groups[g] !== '' && leanTree !== null ? leanTree : fullTree, s = t.self, m = byName[g];
    for (let k = 0; k + stride <= s.length; k += stride) {
      if (s[k + 1] !== g) continue;
      const v = s[k + 2 + st.type];
      if (v > 0) m.set(t.name[s[k]], (m.get(t.name[s[k]]) || 0) + v);
    }
  }
  const top = byName.map(function (m) {
    return [...m.entries()].sort(function (a, b) { return b[1] - a[1] || a[0] - b[0]; }).slice(0, TOP);
  });
  c = {sum: sum, all: all, top: top};
  tcache.set(key, c);
  return c;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function showTotals() {
  const c = groupTotals(), body = $('totalsbody'), frag = document.createDocumentFragment();
  const order = [];
  for (let g = 0; g < G; g++) order.push(g);
  order.sort(function (a, b) { return c.sum[b] - c.sum[a] || a - b; });
  for (const g of order) {
    const tr = document.createElement('tr');
    tr.dataset.g = String(g);
    if (g === st.group) tr.className = 'sel';
    cell(tr, groupName(g));
    cell(tr, fmt(c.sum[g]), 'num');
    cell(tr, pct(c.sum[g], c.all), 'num');
    const td = cell(tr, '', 'top');
    for (const e of c.top[g]) {
      const tf = document.createElement('div'), share = document.createElement('span'), fn = document.createElement('span');
      tf.className = 'tf';
      tf.title = D.names[e[0]];
      share.className = 'share';
      share.textContent = pct(e[1], c.sum[g]);
      fn.className = 'fn';
      fn.textContent = D.names[D.short[e[0]]];
      tf.append(share, fn);
      td.appendChild(tf);
    }
    frag.appendChild(tr);
  }
  body.replaceChildren(frag);
}

function option(sel, value, text) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = text;
  sel.appendChild(o);
}

const stype = $('stype'), agent = $('agent'), search = $('search'), engineBox = $('engine');
types.forEach(function (t, i) { option(stype, i, t.type + (t.unit ? ' (' + t.unit + ')' : '')); });
stype.value = String(st.type);
option(agent, -1, 'all');
if (!(G === 1 && D.groups[0] === '')) for (let g = 0; g < G; g++) option(agent, g, groupName(g));
agent.value = '-1';
engineBox.checked = st.engine;
document.title = D.title;
$('title').textContent = D.title;

// Switching trees renumbers the nodes: the zoom starts over.
function setGroup(g) {
  const was = cur();
  st.group = g;
  agent.value = String(g);
  if (cur() !== was) st.zoom = 0;
  render();
}
stype.addEventListener('change', function () { st.type = +stype.value; render(); });
agent.addEventListener('change', function () { setGroup(+agent.value); });
engineBox.addEventListener('change', function () {
  const was = cur();
  st.engine = engineBox.checked;
  if (cur() !== was) st.zoom = 0;
  render();
});
$('totalsbody').addEventListener('click', function (e) {
  const tr = e.target.closest('tr');
  if (tr) setGroup(+tr.dataset.g === st.group ? -1 : +tr.dataset.g);
});
search.addEventListener('input', function () { setSearch(search.value); });
$('reset').addEventListener('click', function () { st.zoom = 0; render(); });
$('orient').addEventListener('click', function () { st.icicle = !st.icicle; render(); });
flame.addEventListener('click', function (e) {
  const el = e.target.closest('.f');
  if (el) { st.zoom = +el.dataset.n; render(); }
});
flame.addEventListener('mouseover', function (e) {
  const el = e.target.closest('.f');
  if (el) details.textContent = el.title;
});
flame.addEventListener('mouseleave', function () { details.textContent = ''; });
document.addEventListener('keydown', function (e) {
  if (e.key === 'Escape') { st.zoom = 0; render(); }
});
render();
})();
`
