// The space-time chart as static SVG: readable without scripts; the page's script only adds hover and click.
import { fmtUs } from '../fleet/summary.js';
import { KIND_COLORS, esc, px } from './html.js';
import { type ChartLayout, LABEL_W, layoutChart } from './layout.js';
import type { ReportBlock, ReportModel } from './model.js';

export function renderChart(model: ReportModel): string {
  const L = layoutChart(model);
  const rowsBottom = L.rowsTop + model.tenants.length * L.rowH;
  const parts: string[] = [];
  parts.push(
    `<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="${L.width}" height="${L.height}" viewBox="0 0 ${L.width} ${L.height}" role="img" aria-label="space-time chart: ${model.grouping ? `${model.grouping.tenants} tenants in ${model.tenants.length} groups` : `${model.tenants.length} tenants`}, ${model.blocks.length} launches">`,
  );
  parts.push(
    '<defs><pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="5" fill="rgba(255,255,255,0.55)"/></pattern></defs>',
  );
  parts.push(stageBands(L, rowsBottom));
  parts.push(tenantRows(model, L));
  parts.push(timeAxis(model, L, rowsBottom));
  parts.push('<g class="launches">');
  model.blocks.forEach((b, i) => parts.push(blockSvg(b, L.blocks[i]!, L.rowH, model.basis === 'measured')));
  parts.push('</g></svg>');
  return parts.join('\n');
}

function stageBands(L: ChartLayout, rowsBottom: number): string {
  const out = ['<g class="stages">', `<text class="axis-title" x="${LABEL_W - 8}" y="${L.rowsTop - 12}" text-anchor="end">stage</text>`];
  L.stages.forEach((s, i) => {
    out.push(
      `<rect class="stage-band${i % 2 ? ' odd' : ''}" x="${px(s.x)}" y="${L.rowsTop - 22}" width="${px(s.w)}" height="${px(rowsBottom - L.rowsTop + 22)}"/>`,
    );
    if (s.label !== null) out.push(`<text class="stage-label" x="${px(s.x + s.w / 2)}" y="${L.rowsTop - 8}" text-anchor="middle">${s.label}</text>`);
  });
  out.push('</g>');
  return out.join('');
}

function tenantRows(model: ReportModel, L: ChartLayout): string {
  const out = ['<g class="tenants">'];
  for (const t of model.tenants) {
    const y = L.rowsTop + t.row * L.rowH;
    const name = t.members > 1 ? groupName(t.id, t.members) : t.id.length > 22 ? `${t.id.slice(0, 21)}…` : t.id;
    const who = t.members > 1 ? `${t.members} tenants (${t.sample.join(', ')}, …)` : t.id;
    const tip = `${who}${t.model ? ` (${t.model})` : ''}: ${t.layers} layers, in ${t.launches} launches, max batch ${t.maxBatch}${t.sloMs !== null ? `, SLO ${t.sloMs} ms` : ''}`;
    out.push(
      `<g class="tenant" data-tenant="${esc(t.id)}"><title>${esc(tip)}</title>` +
        `<line class="row-line" x1="${LABEL_W}" x2="${px(LABEL_W + L.plotW)}" y1="${px(y + L.rowH)}" y2="${px(y + L.rowH)}"/>` +
        `<text class="tenant-label" x="${LABEL_W - 8}" y="${px(y + L.rowH / 2)}" dy="0.35em" text-anchor="end" font-size="${Math.min(12, L.rowH - 1)}">${esc(name)}</text></g>`,
    );
  }
  out.push('</g>');
  return out.join('');
}

// A group row's label: its size and the end of its model name (what tells groups of one family apart).
function groupName(label: string, members: number): string {
  const prefix = `${members} × `;
  const rest = label.slice(prefix.length);
  const room = GROUP_LABEL_CHARS - prefix.length;
  return rest.length > room ? `${prefix}…${rest.slice(-(room - 1))}` : label;
}

const GROUP_LABEL_CHARS = 18; // fits LABEL_W at the 12 px label font (20 did not, by a character)

function timeAxis(model: ReportModel, L: ChartLayout, rowsBottom: number): string {
  const out = ['<g class="axis">', `<line class="axis-line" x1="${LABEL_W}" x2="${px(LABEL_W + L.plotW)}" y1="${rowsBottom}" y2="${rowsBottom}"/>`];
  let lastLabelEnd = -Infinity;
  for (const t of L.ticks) {
    out.push(`<line class="tick" x1="${px(t.x)}" x2="${px(t.x)}" y1="${rowsBottom}" y2="${rowsBottom + 4}"/>`);
    if (t.x - lastLabelEnd > 8) {
      out.push(`<text class="tick-label" x="${px(t.x)}" y="${rowsBottom + 15}" text-anchor="middle">${esc(t.label)}</text>`);
      lastLabelEnd = t.x + t.label.length * 3.5;
    }
  }
  out.push(`<text class="axis-title" x="${LABEL_W}" y="${rowsBottom + 30}">time in the tick (${model.basis}; ${fmtUs(model.tickUs)} in all) →</text>`);
  out.push('</g>');
  return out.join('');
}

function blockSvg(b: ReportBlock, box: ChartLayout['blocks'][number], rowH: number, measuredBasis: boolean): string {
  const predictedOnly = measuredBasis && b.measuredUs === null; // hatched: the bench did not time it
  const cls = `launch kind-${b.kind}${b.runs.length > 1 ? ' split' : ''}${predictedOnly ? ' unmeasured' : ''}`;
  const fill = KIND_COLORS[b.kind];
  const rects = box.rects.map((r) => {
    const main = `<rect x="${px(box.x + 0.5)}" y="${px(r.y)}" width="${px(Math.max(1, box.w - 1))}" height="${px(r.h)}" rx="2" fill="${fill}"/>`;
    const hatch = predictedOnly
      ? `<rect x="${px(box.x + 0.5)}" y="${px(r.y)}" width="${px(Math.max(1, box.w - 1))}" height="${px(r.h)}" fill="url(#hatch)"/>`
      : '';
    return main + hatch;
  });
  // a launch whose rows could not all be adjacent: its pieces are joined by a line, still one block
  const first = box.rects[0]!;
  const last = box.rects[box.rects.length - 1]!;
  const joint =
    box.rects.length > 1
      ? `<line class="joint" x1="${px(box.x + box.w / 2)}" x2="${px(box.x + box.w / 2)}" y1="${px(first.y + first.h)}" y2="${px(last.y)}" stroke="${fill}"/>`
      : '';
  const tallest = box.rects.reduce((a, r) => (r.h > a.h ? r : a), first);
  const text = blockText(b, box.w, tallest.h, rowH);
  const label = text
    ? `<text class="block-label" x="${px(box.x + box.w / 2)}" y="${px(tallest.y + tallest.h / 2)}" dy="0.35em" text-anchor="middle">${esc(text)}</text>`
    : '';
  return `<g class="${cls}" data-id="${b.id}" tabindex="0" role="button" aria-label="${esc(`launch ${b.id}: ${b.label}`)}">${rects.join('')}${joint}${label}</g>`;
}

// A word inside the block when it fits: the GEMM kind or the generated kernel's op.
function blockText(b: ReportBlock, w: number, h: number, rowH: number): string | null {
  if (h < Math.min(11, rowH - 2)) return null;
  const word = b.kind === 'generated' ? b.op : b.kind;
  return w >= word.length * 6.2 + 6 ? word : null;
}
