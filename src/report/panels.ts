// The summary panels above the chart: launches per tick vs the tenants' layers, tick time vs ungrouped vs
// the roofline floor, and the memory arenas. Plain HTML bars (widths in %), so they print and scale.
import { fewerText, fmtBytes, fmtUs, idsText } from '../fleet/summary.js';
import { KIND_COLORS, KIND_TEXT, esc } from './html.js';
import { KIND_LABELS, type ReportModel } from './model.js';

interface Bar {
  readonly label: string;
  readonly value: number;
  readonly text: string;
  readonly cls: string;
  readonly note?: string;
}

function bars(items: readonly Bar[]): string {
  const max = Math.max(...items.map((b) => b.value), 1e-12);
  return `<div class="bars">${items
    .map((b) => {
      const pct = Math.max(0.6, (b.value / max) * 100);
      return (
        `<div class="bar-row ${b.cls}"><span class="bar-label">${esc(b.label)}</span>` +
        `<span class="bar-track"><span class="bar" style="width:${pct.toFixed(2)}%"></span></span>` +
        `<span class="bar-value">${esc(b.text)}</span>${b.note ? `<span class="bar-note">${esc(b.note)}</span>` : ''}</div>`
      );
    })
    .join('')}</div>`;
}

function launchesPanel(m: ReportModel): string {
  const t = m.totals;
  const headline =
    t.launches <= t.tenantLayers && t.launches > 0
      ? `${(t.tenantLayers / t.launches).toFixed(1)}× fewer launches`
      : `${t.launches} launches${fewerText(t.launches, t.tenantLayers)}`;
  const chips = KIND_LABELS.filter((k) => m.kinds[k].launches > 0)
    .map((k) => `<span class="chip"><i style="background:${KIND_COLORS[k]}"></i>${m.kinds[k].launches} ${k}</span>`)
    .join('');
  return (
    `<section class="panel" id="panel-launches"><h2>Launches per tick</h2><p class="big">${esc(headline)}</p>` +
    bars([
      { label: 'space-time plan', value: t.launches, text: `${t.launches}`, cls: 'plan' },
      { label: 'one per tenant layer', value: t.tenantLayers, text: `${t.tenantLayers}`, cls: 'base' },
    ]) +
    `<p class="chips">${chips}</p></section>`
  );
}

function timePanel(m: ReportModel): string {
  const t = m.totals;
  const items: Bar[] = [
    { label: 'predicted tick', value: t.predictedTickUs, text: fmtUs(t.predictedTickUs), cls: 'plan' },
    { label: 'ungrouped', value: t.ungroupedTickUs, text: fmtUs(t.ungroupedTickUs), cls: 'base', note: 'one launch per tenant layer' },
    ...(t.criticalPathUs !== null
      ? [
          {
            label: `on ${t.lanes} lanes`,
            value: t.criticalPathUs,
            text: fmtUs(t.criticalPathUs),
            cls: 'plan',
            note: 'side-by-side launches sharing the device',
          },
        ]
      : []),
    ...(t.branches && t.branches.tenants.length > 0
      ? [
          {
            label: 'batched instead',
            value: t.branches.batchedUs,
            text: fmtUs(t.branches.batchedUs),
            cls: 'base',
            note: `had ${t.branches.tenants.length} branched tenants been batched`,
          },
        ]
      : []),
    ...(t.branches && t.branches.tenants.length === 0 && t.branches.branchedUs !== null
      ? [
          {
            label: 'branched instead',
            value: t.branches.branchedUs,
            text: fmtUs(t.branches.branchedUs),
            cls: 'base',
            note: 'had equal tenants run as parallel branches (--branching auto: the model predicted batching faster)',
          },
        ]
      : []),
    ...(t.branches?.measured
      ? (['batched', 'branched'] as const).map((how) => ({
          label: `${how}, timed`,
          value: how === 'batched' ? t.branches!.measured!.batchedUs : t.branches!.measured!.branchedUs,
          text: fmtUs(how === 'batched' ? t.branches!.measured!.batchedUs : t.branches!.measured!.branchedUs),
          cls: 'measured',
          note: `--branching measure on ${t.branches!.measured!.device}: the ${t.branches!.tenants.length > 0 ? 'branched' : 'batched'} plan kept`,
        }))
      : []),
    { label: 'roofline floor', value: t.floorUs, text: fmtUs(t.floorUs), cls: 'floor', note: 'max(FLOPs / peak, bytes / bandwidth)' },
  ];
  if (m.basis === 'measured') {
    const complete = m.measuredTickUs !== null;
    items.splice(1, 0, {
      label: complete ? 'measured tick' : 'measured (partial)',
      value: m.tickUs,
      text: fmtUs(m.tickUs),
      cls: 'measured',
      note: complete ? (m.benchDevice ?? 'bench') : `${m.measuredLaunches} of ${m.blocks.length} launches timed, the rest predicted`,
    });
  }
  const speedup = t.predictedTickUs > 0 ? `${(t.ungroupedTickUs / t.predictedTickUs).toFixed(1)}× faster than ungrouped` : 'no predicted time';
  return (
    `<section class="panel" id="panel-time"><h2>Tick time</h2><p class="big">${esc(speedup)}</p>` +
    bars(items) +
    `<p class="note">cost model: ${esc(t.device)}${t.branches ? `; parallel branches: ${esc(idsText(t.branches.tenants))}` : ''}</p></section>`
  );
}

function memoryPanel(m: ReportModel): string {
  const a = m.totals.arenas;
  const saved = a.actWithoutReuse > 0 ? `${Math.round((1 - a.act / a.actWithoutReuse) * 100)}% of activations saved by reuse` : 'no activations';
  return (
    `<section class="panel" id="panel-memory"><h2>Memory arenas</h2><p class="big">${esc(fmtBytes(a.weights + a.act + a.io))} in all</p>` +
    bars([
      { label: 'weights', value: a.weights, text: fmtBytes(a.weights), cls: 'weights', note: 'read-only, uploaded once' },
      { label: 'activations', value: a.act, text: fmtBytes(a.act), cls: 'act', note: 'reused across stages' },
      { label: '…without reuse', value: a.actWithoutReuse, text: fmtBytes(a.actWithoutReuse), cls: 'base' },
      { label: 'io slots', value: a.io, text: fmtBytes(a.io), cls: 'io', note: 'per-tenant inputs and outputs' },
    ]) +
    `<p class="note">${esc(saved)}</p></section>`
  );
}

export function renderPanels(m: ReportModel): string {
  return `<div class="panels">${launchesPanel(m)}${timePanel(m)}${memoryPanel(m)}</div>`;
}

export function renderLegend(m: ReportModel): string {
  const items = KIND_LABELS.map((k) => {
    const n = m.kinds[k];
    return (
      `<span class="legend-item${n.launches === 0 ? ' empty' : ''}"><i style="background:${KIND_COLORS[k]}"></i>${esc(KIND_TEXT[k])} <b>${n.launches}</b>` +
      `${n.launches > 0 ? ` <span class="muted">(${fmtUs(n.us)})</span>` : ''}</span>`
    );
  });
  if (m.basis === 'measured' && m.measuredLaunches < m.blocks.length)
    items.push('<span class="legend-item"><i class="hatched"></i>not in the bench: predicted width</span>');
  return `<div class="legend">${items.join('')}</div>`;
}
