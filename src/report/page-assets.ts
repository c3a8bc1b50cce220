// The report page's stylesheet and script, inlined into every report (no external files, no fetches).
// The script only shows what the page's JSON already says: it formats nothing and decides nothing.

export const PAGE_CSS = `
:root { --ink: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --card: #fff; --plan: #2166ac; --base: #b8bfc7; --floor: #1a7f37; --measured: #bf3989; }
* { box-sizing: border-box; }
body { margin: 0; padding: 20px 24px 40px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--ink); background: var(--bg); }
header h1 { margin: 0; font-size: 22px; }
header .sub { margin: 2px 0 16px; color: var(--muted); }
h2 { margin: 0 0 6px; font-size: 15px; }
.muted, .note { color: var(--muted); }
.note { font-size: 12.5px; margin: 6px 0; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px; margin-bottom: 14px; }
.panel, .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card { margin-bottom: 14px; }
.big { font-size: 20px; font-weight: 600; margin: 0 0 8px; }
.bars { display: grid; gap: 5px; }
.bar-row { display: grid; grid-template-columns: 130px 1fr 78px; align-items: center; gap: 8px; font-size: 13px; }
.bar-note { grid-column: 2 / 4; font-size: 11.5px; color: var(--muted); margin-top: -4px; }
.bar-track { background: #eef1f4; border-radius: 3px; height: 14px; overflow: hidden; }
.bar { display: block; height: 100%; border-radius: 3px; background: var(--base); }
.bar-value { text-align: right; font-variant-numeric: tabular-nums; }
.plan .bar { background: var(--plan); } .floor .bar { background: var(--floor); } .measured .bar { background: var(--measured); }
.weights .bar { background: #5e3c99; } .act .bar { background: #e66101; } .io .bar { background: #4dac26; }
.chips { margin: 8px 0 0; display: flex; flex-wrap: wrap; gap: 6px 12px; font-size: 12.5px; }
.chip i, .legend-item i { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 4px 0 8px; font-size: 13px; }
.legend-item.empty { opacity: .45; }
.legend-item i.hatched { background: repeating-linear-gradient(45deg, #8073ac 0 3px, #cfc9e3 3px 5px); }
.chart-wrap { display: flex; gap: 12px; align-items: flex-start; }
.chart-scroll { overflow-x: auto; flex: 1 1 auto; min-width: 0; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
#details { flex: 0 0 280px; font-size: 13px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; min-height: 120px; max-height: 640px; overflow: auto; background: #fcfcfd; }
#details h3, #tip h3 { margin: 0 0 4px; font-size: 14px; }
dl.kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 6px 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-word; }
ul.tenant-list { margin: 4px 0 0; padding-left: 18px; columns: 2; }
#tip { position: fixed; z-index: 10; pointer-events: none; max-width: 360px; background: #fff; border: 1px solid var(--line); border-radius: 6px; box-shadow: 0 4px 14px rgba(0,0,0,.15); padding: 8px 10px; font-size: 12.5px; }
#tip ul.tenant-list { columns: 1; }
svg text { font-family: inherit; }
.stage-band { fill: #f3f5f8; } .stage-band.odd { fill: #e8ecf1; }
.stage-label { font-size: 10px; fill: var(--muted); }
.axis-title { font-size: 11px; fill: var(--muted); }
.tenant-label { fill: var(--ink); cursor: pointer; }
.tenant.hl .tenant-label { font-weight: 700; fill: #0550ae; }
.row-line { stroke: #fff; stroke-width: 1; }
.axis-line, .tick { stroke: #8c959f; } .tick-label { font-size: 10px; fill: var(--muted); }
g.launch { cursor: pointer; outline: none; }
g.launch rect { stroke: rgba(0,0,0,.25); stroke-width: .5; }
g.launch .joint { stroke-width: 2; stroke-dasharray: 3 2; }
g.launch:hover rect, g.launch:focus rect { stroke: #000; stroke-width: 1.5; }
.block-label { font-size: 10px; fill: #fff; pointer-events: none; }
svg.has-selection g.launch { opacity: .25; }
svg.has-selection g.launch.selected, svg.has-selection g.launch.hl { opacity: 1; }
g.launch.selected rect { stroke: #000; stroke-width: 2; }
summary { cursor: pointer; font-weight: 600; }
.table-scroll { overflow-x: auto; margin-top: 8px; }
table { border-collapse: collapse; font-size: 12.5px; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
td:nth-child(n+7) { text-align: right; font-variant-numeric: tabular-nums; }
tr.selected td { background: #fff8c5; }
tbody tr { cursor: pointer; }
`;

export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('loom-data').textContent);
  var byId = {};
  data.blocks.forEach(function (b) { byId[String(b.id)] = b; });
  var chart = document.getElementById('chart');
  var tip = document.getElementById('tip');
  var details = document.getElementById('details');
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }
  function fill(box, b) {
    box.replaceChildren();
    box.appendChild(el('h3', null, b.title));
    box.appendChild(el('div', 'muted', b.label));
    var dl = el('dl', 'kv');
    b.fields.forEach(function (f) { dl.appendChild(el('dt', null, f[0])); dl.appendChild(el('dd', null, f[1])); });
    box.appendChild(dl);
    box.appendChild(el('div', null, 'tenants (' + b.tenants.length + ')'));
    var ul = el('ul', 'tenant-list');
    b.tenants.forEach(function (t) { ul.appendChild(el('li', null, t)); });
    box.appendChild(ul);
  }
  function blockOf(target) { return target && target.closest ? target.closest('g.launch') : null; }
  function place(ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = Math.max(8, ev.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 8) y = Math.max(8, ev.clientY - r.height - 14);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  }
  function clearMarks() {
    chart.classList.remove('has-selection');
    document.querySelectorAll('.selected, .hl').forEach(function (e) { e.classList.remove('selected'); e.classList.remove('hl'); });
  }
  function select(id) {
    var b = byId[id];
    if (!b) return;
    clearMarks();
    chart.classList.add('has-selection');
    document.querySelectorAll('[data-id="' + id + '"]').forEach(function (e) { e.classList.add('selected'); });
    fill(details, b);
  }
  function selectTenant(name) {
    clearMarks();
    chart.classList.add('has-selection');
    var n = 0;
    data.blocks.forEach(function (b) {
      if (b.tenants.indexOf(name) < 0) return;
      n++;
      var g = chart.querySelector('g.launch[data-id="' + b.id + '"]');
      if (g) g.classList.add('hl');
    });
    document.querySelectorAll('g.tenant').forEach(function (g) { if (g.getAttribute('data-tenant') === name) g.classList.add('hl'); });
    details.replaceChildren(el('h3', null, name), el('div', null, n + ' launch' + (n === 1 ? '' : 'es') + ' cover this tenant; they are highlighted.'));
  }
  chart.addEventListener('mouseover', function (ev) {
    var g = blockOf(ev.target);
    if (!g) { tip.hidden = true; return; }
    fill(tip, byId[g.getAttribute('data-id')]);
    tip.hidden = false;
    place(ev);
  });
  chart.addEventListener('mousemove', function (ev) { if (!tip.hidden) place(ev); });
  chart.addEventListener('mouseleave', function () { tip.hidden = true; });
  chart.addEventListener('click', function (ev) {
    var g = blockOf(ev.target);
    if (g) { select(g.getAttribute('data-id')); return; }
    var t = ev.target.closest ? ev.target.closest('g.tenant') : null;
    if (t) { selectTenant(t.getAttribute('data-tenant')); return; }
    clearMarks();
  });
  chart.addEventListener('keydown', function (ev) {
    var g = blockOf(ev.target);
    if (g && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); select(g.getAttribute('data-id')); }
  });
  document.addEventListener('keydown', function (ev) { if (ev.key === 'Escape') { clearMarks(); tip.hidden = true; } });
  var table = document.querySelector('#launch-table tbody');
  if (table) table.addEventListener('click', function (ev) {
    var tr = ev.target.closest('tr[data-id]');
    if (tr) select(tr.getAttribute('data-id'));
  });
})();
`;
