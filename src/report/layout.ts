// Pixel geometry of the space-time chart: x is time within the tick (launches one after another, widths by
// time, never narrower than MIN_BLOCK_PX so every launch stays visible and hoverable), y is one row per tenant.
import type { ReportModel } from './model.js';

export const MIN_BLOCK_PX = 3;
export const LABEL_W = 150; // tenant names
export const TOP_H = 30; // stage numbers
export const AXIS_H = 34; // time axis below the rows
export const RIGHT_PAD = 16;
const TARGET_PLOT_W = 940;

export interface BlockBox {
  readonly x: number;
  readonly w: number;
  readonly rects: ReadonlyArray<{ readonly y: number; readonly h: number }>;
}

export interface ChartLayout {
  readonly width: number;
  readonly height: number;
  readonly plotW: number;
  readonly rowH: number;
  readonly rowsTop: number;
  readonly blocks: readonly BlockBox[]; // one per model block, same order
  readonly stages: ReadonlyArray<{ readonly x: number; readonly w: number; readonly label: string | null }>;
  readonly ticks: ReadonlyArray<{ readonly x: number; readonly label: string }>;
}

export function layoutChart(model: ReportModel): ChartLayout {
  const n = model.blocks.length;
  const rowCount = Math.max(1, model.tenants.length);
  const rowH = Math.max(10, Math.min(24, Math.floor(600 / rowCount)));
  const plotW = Math.max(TARGET_PLOT_W, Math.ceil(n * MIN_BLOCK_PX * 1.25));
  const scale = fitScale(
    model.blocks.map((b) => b.us),
    plotW,
  );
  const widths = model.blocks.map((b) => Math.max(MIN_BLOCK_PX, b.us * scale));
  const edges = [0]; // px of each block boundary
  for (const w of widths) edges.push(edges[edges.length - 1]! + w);
  const usEdges = [0];
  for (const b of model.blocks) usEdges.push(usEdges[usEdges.length - 1]! + b.us);
  const xOfUs = (us: number) => LABEL_W + interpolate(usEdges, edges, us);

  const rowsTop = TOP_H;
  const blocks = model.blocks.map((b, i) => ({
    x: LABEL_W + edges[i]!,
    w: widths[i]!,
    rects: b.runs.map((r) => ({ y: rowsTop + r.row * rowH + 1, h: r.rows * rowH - 2 })),
  }));
  let blockIndex = 0;
  const stages = model.stages.map((s) => {
    const x0 = LABEL_W + edges[blockIndex]!;
    blockIndex += s.launches;
    const w = LABEL_W + edges[blockIndex]! - x0;
    return { x: x0, w, label: w >= 16 ? String(s.stage) : null };
  });
  const ticks = niceTicks(model.tickUs).map((us) => ({ x: xOfUs(us), label: fmtAxisUs(us) }));
  const plotEnd = edges[edges.length - 1]!;
  return {
    width: LABEL_W + Math.ceil(plotEnd) + RIGHT_PAD,
    height: rowsTop + rowCount * rowH + AXIS_H,
    plotW: plotEnd,
    rowH,
    rowsTop,
    blocks,
    stages,
    ticks,
  };
}

// px per µs such that Σ max(MIN_BLOCK_PX, us·scale) ≈ plotW.
function fitScale(us: readonly number[], plotW: number): number {
  const total = us.reduce((a, b) => a + b, 0);
  if (total <= 0) return 0;
  const width = (k: number) => us.reduce((a, u) => a + Math.max(MIN_BLOCK_PX, u * k), 0);
  let lo = 0;
  let hi = plotW / total;
  if (width(lo) >= plotW) return 0;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (width(mid) > plotW) hi = mid;
    else lo = mid;
  }
  return lo;
}

// Piecewise-linear map from µs to px through the block boundaries (blocks drawn at the minimum width bend it).
function interpolate(from: readonly number[], to: readonly number[], v: number): number {
  if (v <= 0) return 0;
  for (let i = 1; i < from.length; i++) {
    if (v <= from[i]!) {
      const span = from[i]! - from[i - 1]!;
      return span > 0 ? to[i - 1]! + ((v - from[i - 1]!) / span) * (to[i]! - to[i - 1]!) : to[i]!;
    }
  }
  return to[to.length - 1]!;
}

function niceTicks(total: number): number[] {
  if (!(total > 0)) return [0];
  const raw = total / 8;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= total * 1.0001; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmtAxisUs(us: number): string {
  if (us === 0) return '0';
  if (us >= 1e6) return `${+(us / 1e6).toPrecision(4)} s`;
  if (us >= 1e3) return `${+(us / 1e3).toPrecision(4)} ms`;
  return `${+us.toPrecision(4)} µs`;
}
