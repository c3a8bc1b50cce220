// The whole report page: one self-contained HTML file (inline CSS, SVG and script; it fetches nothing).
import { fmtBytes, fmtFlops, fmtUs } from '../fleet/summary.js';
import { renderChart } from './chart.js';
import { KIND_TEXT, esc, flopText, scriptJson } from './html.js';
import { MAX_GROUP_ROWS } from './groups.js';
import type { ReportModel } from './model.js';
import { renderLegend, renderPanels } from './panels.js';
import { PAGE_CSS, PAGE_SCRIPT } from './page-assets.js';

export interface PageOptions {
  readonly title?: string; // e.g. the plan directory
}

// What the script shows for a launch, formatted here so the page only prints it.
function blockDetails(m: ReportModel): unknown {
  return m.blocks.map((b) => ({
    id: b.id,
    title: `launch ${b.id} · ${b.kind === 'generated' ? `generated ${b.op}` : `${b.kind} GEMM`}`,
    label: b.label,
    fields: [
      ['kind', b.kind === 'generated' ? `${KIND_TEXT[b.kind]}: ${b.op}` : KIND_TEXT[b.kind]],
      ['stage', `${b.stage}; starts ${fmtUs(b.startUs)} into the tick`],
      ...(b.lane > 0 || b.after.length > 0 ? [['lane', `${b.lane}${b.after.length > 0 ? `; waits for ${b.after.map((a) => `#${a}`).join(', ')}` : ''}`]] : []),
      ['shapes', b.shapes],
      ['FLOPs', flopText(b.flops)],
      ['bytes', `${fmtBytes(b.bytes)} read + written`],
      ['predicted', fmtUs(b.predictedUs)],
      ['ungrouped', `${fmtUs(b.ungroupedUs)} as ${b.tenantCount} per-tenant launch${b.tenantCount === 1 ? '' : 'es'}`],
      ...(m.grouping ? [['tenants', `${b.tenantCount} in ${b.tenants.length} group${b.tenants.length === 1 ? '' : 's'} (listed below)`]] : []),
      ...(b.measuredUs !== null ? [['measured', fmtUs(b.measuredUs)]] : m.basis === 'measured' ? [['measured', 'not in the bench file']] : []),
    ],
    tenants: b.tenants,
  }));
}

function launchTable(m: ReportModel): string {
  const measured = m.basis === 'measured';
  const head = ['#', 'stage', 'kind', 'launch', 'tenants', 'shapes', 'FLOPs', 'bytes', 'predicted', 'ungrouped', ...(measured ? ['measured'] : [])];
  const rows = m.blocks.map((b) => {
    const names = b.tenants.length <= 4 ? b.tenants.join(', ') : `${b.tenants.length}: ${b.tenants.slice(0, 3).join(', ')}, …`;
    const tenants = m.grouping ? `${b.tenantCount} in ${b.tenants.length === 1 ? b.tenants[0] : `${b.tenants.length} groups`}` : names;
    const cells = [
      String(b.id),
      String(b.stage),
      b.kind === 'generated' ? `gen:${b.op}` : b.kind,
      b.label,
      tenants,
      b.shapes,
      fmtFlops(b.flops),
      fmtBytes(b.bytes),
      fmtUs(b.predictedUs),
      fmtUs(b.ungroupedUs),
      ...(measured ? [b.measuredUs === null ? '—' : fmtUs(b.measuredUs)] : []),
    ];
    return `<tr data-id="${b.id}">${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
  });
  return (
    `<details class="card" id="launch-table"><summary>All ${m.blocks.length} launches</summary><div class="table-scroll"><table>` +
    `<thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div></details>`
  );
}

function rowsNote(m: ReportModel): string {
  if (!m.grouping) return 'One row per tenant.';
  return `One row per tenant group: the ${m.grouping.tenants} tenants fall into ${m.tenants.length} rows of tenants with the same model, max batch, SLO and launches (the largest groups first${m.grouping.groups.length >= MAX_GROUP_ROWS ? '; the smallest share the "other" row' : ''}).`;
}

// The groups, largest first (at most MAX_GROUP_ROWS rows): who is in each, instead of a table of every tenant.
function groupTable(m: ReportModel): string {
  if (!m.grouping) return '';
  const head = ['group', 'first tenants', 'model', 'tenants', 'max batch', 'SLO ms', 'layers', 'launches']; // numbers last: the table style right-aligns columns 7+
  const rows = [...m.tenants]
    .sort((a, b) => b.members - a.members || a.index - b.index)
    .map((t) => {
      const g = m.grouping!.groups[t.index]!;
      const cells = [
        t.id,
        `${t.sample.join(', ')}${t.members > t.sample.length ? ', …' : ''}`,
        g.model ?? '(several)',
        String(t.members),
        g.maxBatch === null ? '(several)' : String(g.maxBatch),
        g.sloMs === null ? '—' : String(g.sloMs),
        g.layers === null ? '(several)' : String(g.layers),
        String(t.launches),
      ];
      return `<tr>${cells.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
    });
  return (
    `<section class="card" id="tenant-groups"><h2>Tenant groups</h2><p class="note">${m.grouping.tenants} tenants in ${m.tenants.length} groups; <code>loom inspect --json</code> lists every tenant.</p>` +
    `<div class="table-scroll"><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div></section>\n`
  );
}

export function renderPage(m: ReportModel, opts: PageOptions = {}): string {
  const t = m.totals;
  const title = `Loom plan${opts.title ? ` · ${opts.title}` : ''}`;
  const sub =
    `${t.tenants} tenant${t.tenants === 1 ? '' : 's'} · ${t.stages} stage${t.stages === 1 ? '' : 's'} · ${t.launches} launches per tick · ` +
    `${flopText(t.flops)} and ${fmtBytes(t.bytes)} per tick · widths: ${m.basis === 'measured' ? `measured${m.benchDevice ? ` on ${m.benchDevice}` : ''}` : 'predicted'} time`;
  const split = m.breaks > 0 ? ` ${m.breaks} launch piece${m.breaks === 1 ? '' : 's'} could not sit next to the rest of their launch; a line joins them.` : '';
  const data = { blocks: blockDetails(m), tenants: m.tenants.map((x) => x.id) };
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<header><h1>${esc(title)}</h1><p class="sub">${esc(sub)}</p></header>
${renderPanels(m)}
<section class="card" id="chart-card">
<h2>Space-time chart</h2>
<p class="note">${esc(rowsNote(m))} One block per launch: a block spans every ${m.grouping ? 'group' : 'tenant'} the launch covers and is as wide as its ${m.basis} time (at least 3 px). Stages are the shaded columns. Hover or click a block for its shapes, FLOPs, bytes and ${m.grouping ? 'groups' : 'tenants'}; click a ${m.grouping ? 'group' : 'tenant'} to see its launches.${esc(split)}</p>
${renderLegend(m)}
<div class="chart-wrap"><div class="chart-scroll">${renderChart(m)}</div>
<aside id="details" aria-live="polite"><p class="muted">Click a block to pin its details here.</p></aside></div>
</section>
${groupTable(m)}${launchTable(m)}
<div id="tip" role="tooltip" hidden></div>
<script type="application/json" id="loom-data">${scriptJson(data)}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
