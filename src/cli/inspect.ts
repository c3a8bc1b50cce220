import path from 'node:path';
import type { Command } from 'commander';
import { readPlanDir } from '../../codegen/index.js';
import { fail } from '../../ir/errors.js';
import { CHART_TENANT_ROWS, type ReportPlan, groupTenants, readBenchFile, writeReport } from '../report/index.js';
import { isShardsDir, readShardsFile } from '../fleet/shards-file.js';
import { formatShards } from '../fleet/shards-summary.js';
import { diffPlanDirs } from '../fleet/plan-diff.js';
import { formatPlanDiff } from './inspect-diff.js';
import {
  type InspectablePlan,
  type LaunchRow,
  type PlanTotals,
  fewerText,
  fmtBytes,
  fmtFlops,
  fmtUs,
  idsText,
  launchRows,
  planTotals,
} from '../fleet/summary.js';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show a plan: its stages and launches (strided / grouped / generated), tenants, shapes, FLOPs, bytes, predicted time')
    .argument('<plan-dir>', 'a directory written by `loom compile` (with --shards: the shards side by side)')
    .option('--json', 'print the launches and totals as JSON')
    .option(
      '--diff <old-plan>',
      'compare <old-plan> with <plan-dir> (`loom inspect --diff OLD NEW`): tenants added, removed and changed (graph, weights, settings), launches regrouped, predicted tick and memory before and after',
    )
    .option('--html <file>', 'write a self-contained HTML report: the space-time chart and summary panels')
    .option('--bench <json>', 'with --html: measured launch times {"launches": [{"id": 0, "us": 12.5}, ...]}; block widths use them')
    .action((dir: string, flags: { json?: boolean; html?: string; bench?: string; diff?: string }) => {
      if (flags.diff !== undefined) {
        if (flags.html !== undefined || flags.bench !== undefined) fail('USAGE', '--diff prints text or --json; it does not take --html or --bench');
        const d = diffPlanDirs(flags.diff, dir);
        process.stdout.write(flags.json ? `${JSON.stringify(d, null, 1)}\n` : `${formatPlanDiff(d)}\n`);
        return;
      }
      if (isShardsDir(dir)) return inspectShards(dir, flags);
      const launchPlan = readPlanDir(dir);
      const plan: InspectablePlan = launchPlan;
      if (flags.bench !== undefined && flags.html === undefined) fail('USAGE', '--bench only changes the HTML report; give --html <file> as well');
      if (flags.html !== undefined) {
        const bench =
          flags.bench !== undefined
            ? readBenchFile(
                flags.bench,
                launchPlan.launches.map((l) => l.id),
              )
            : undefined;
        const model = writeReport(launchPlan, flags.html, { title: path.basename(path.resolve(dir)), ...(bench ? { bench } : {}) });
        const rows = model.grouping ? `${model.grouping.tenants} tenants (${model.tenants.length} group rows)` : `${model.tenants.length} tenants`;
        process.stderr.write(`loom: wrote ${flags.html}: ${model.blocks.length} launches over ${rows}, widths by ${model.basis} time\n`);
        if (!flags.json) return;
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(inspectJson(plan), null, 1)}\n`);
        return;
      }
      const groups = launchPlan.tenants.length > CHART_TENANT_ROWS ? `\n\n${formatTenantGroups(launchPlan)}` : '';
      const params = formatParams(plan);
      process.stdout.write(`${formatLaunchTable(plan)}\n\n${formatTotals(plan)}${params ? `\n\n${params}` : ''}${groups}\n`);
    });
}

export function inspectJson(plan: InspectablePlan): unknown {
  return {
    tenants: plan.tenants.map((t) => ({ id: t.id, layers: t.layers, maxBatch: t.maxBatch })),
    launches: launchRows(plan),
    totals: planTotals(plan),
  };
}

const MAX_CELL = 48;

export function formatLaunchTable(plan: InspectablePlan): string {
  const rows = launchRows(plan);
  const lanes = (plan.lanes ?? 1) > 1;
  const header = [
    '#',
    'stage',
    ...(lanes ? ['lane', 'waits for'] : []),
    'kind',
    'launch',
    'tenants',
    'shapes (m x n x k | segment)',
    'FLOPs',
    'bytes',
    'predicted',
    'ungrouped',
  ];
  const right = new Set(lanes ? [0, 1, 2, 8, 9, 10, 11] : [0, 1, 6, 7, 8, 9]);
  const cells = rows.map((r) =>
    [
      String(r.id),
      String(r.stage),
      ...(lanes ? [String(r.lane), r.after.map((a) => `#${a}`).join(' ')] : []),
      r.kind === 'generated' ? `gen:${r.op}` : r.kind,
      r.label,
      tenantCell(r),
      r.shapes,
      fmtFlops(r.flops),
      fmtBytes(r.bytes),
      fmtUs(r.predictedUs),
      fmtUs(r.ungroupedUs),
    ].map(clip),
  );
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: readonly string[]) =>
    c
      .map((s, i) => (right.has(i) ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  let stage = -1;
  for (let i = 0; i < rows.length; i++) {
    if (rows[i]!.stage !== stage && stage !== -1) out.push('');
    stage = rows[i]!.stage;
    out.push(line(cells[i]!));
  }
  return out.join('\n');
}

export function formatTotals(plan: InspectablePlan): string {
  const t = planTotals(plan);
  const a = t.arenas;
  const kinds = Object.entries(t.kinds)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
  const fewer = fewerText(t.launches, t.tenantLayers);
  const speedup = t.predictedTickUs > 0 ? ` (${(t.ungroupedTickUs / t.predictedTickUs).toFixed(1)}x)` : '';
  return [
    `tenants      ${t.tenants}, ${t.stages} stages${t.lanes > 1 ? `, ${t.lanes} parallel lanes` : ''}${t.priorityLanes.length > 0 ? ` (the critical path's at high priority: lane${t.priorityLanes.length > 1 ? 's' : ''} ${t.priorityLanes.join(', ')})` : ''}`,
    `launches     ${t.launches} per tick (${kinds || 'none'}) vs ${t.tenantLayers} tenant layers${fewer}`,
    `work         ${fmtFlops(t.flops)}FLOP, ${fmtBytes(t.bytes)} moved per tick`,
    `predicted    tick ${fmtUs(t.predictedTickUs)}${t.criticalPathUs !== null ? ` in order, ${fmtUs(t.criticalPathUs)} on ${t.lanes} lanes,` : ''} vs ungrouped ${fmtUs(t.ungroupedTickUs)}${speedup}, floor ${fmtUs(t.floorUs)} (${t.device})`,
    ...(t.branches ? [branchesLine(t.branches)] : []),
    ...(t.profile ? [`profile      ${t.profile.name}, sha256 ${t.profile.hash} (loom compile --profile)`] : []),
    `arenas       weights ${fmtBytes(a.weights)}, act ${fmtBytes(a.act)} (${fmtBytes(a.actWithoutReuse)} without reuse), io ${fmtBytes(a.io)}`,
  ].join('\n');
}

// Eltwise launches whose tenants' programs differ only in constants: each tenant's values of the program's
// 'param' instructions (the first few tenants and values of each launch); '' when the plan has none.
export function formatParams(plan: InspectablePlan, tenants = 3, values = 6): string {
  const rows = launchRows(plan).filter((r) => r.params !== undefined);
  if (rows.length === 0) return '';
  const num = (v: number): string => String(Number(v.toPrecision(6)));
  const lines = rows.map((r) => {
    const ps = r.params!;
    const shown = ps.slice(0, tenants).map((p) => {
      const more = p.values.length > values ? ', …' : '';
      return `${p.tenant} [${p.values.slice(0, values).map(num).join(', ')}${more}]`;
    });
    const more = ps.length > tenants ? `, … ${ps.length - tenants} more` : '';
    return `  launch ${r.id}: ${shown.join(', ')}${more}`;
  });
  return [`params       ${rows.length} eltwise launch${rows.length === 1 ? '' : 'es'} read per-tenant constants (params):`, ...lines].join('\n');
}

// Large fleets: who the tenants are, as groups (same model, max batch, SLO and launches), the largest first;
// `--json` lists every tenant.
export function formatTenantGroups(plan: ReportPlan, top = 10): string {
  const { groups } = groupTenants(plan);
  const shown = groups.slice(0, top);
  const lines = shown.map((g) => {
    const more = g.members.length > g.sample.length ? ', …' : '';
    return `  ${g.label}: ${g.layers ?? 'several'} layers, max batch ${g.maxBatch ?? 'several'}${g.sloMs !== null ? `, SLO ${g.sloMs} ms` : ''} (${g.sample.join(', ')}${more})`;
  });
  if (groups.length > shown.length)
    lines.push(`  … ${groups.length - shown.length} more groups (${groups.slice(top).reduce((a, g) => a + g.members.length, 0)} tenants)`);
  return [`tenant groups ${plan.tenants.length} tenants in ${groups.length} groups of the same model, max batch, SLO and launches:`, ...lines].join('\n');
}

function tenantCell(r: LaunchRow): string {
  if (r.tenants.length <= 3) return r.tenants.join(',');
  return `${r.tenants.length}: ${r.tenants.slice(0, 2).join(',')},…`;
}

function clip(s: string): string {
  return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s;
}

// A `loom compile --shards N` directory: the shards side by side; one shard's launches are `loom inspect DIR/shard-<k>`.
function inspectShards(dir: string, flags: { json?: boolean; html?: string; bench?: string }): void {
  const shards = readShardsFile(dir);
  if (flags.html !== undefined || flags.bench !== undefined)
    fail('USAGE', `'${dir}' holds ${shards.shards.length} shard plans; give one of them for --html (e.g. ${dir.replace(/\/$/, '')}/shard-0)`);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(shards, null, 1)}\n`);
    return;
  }
  process.stdout.write(`${formatShards(shards)}\n`);
}

// --branching auto's outcome: the branched tenants, or none where the cost model predicted batching faster.
function branchesLine(b: NonNullable<PlanTotals['branches']>): string {
  const predicted = `predicted ${b.branchedUs !== null ? `${fmtUs(b.branchedUs)} branched, ` : ''}${fmtUs(b.batchedUs)} batched`;
  const why = b.measured
    ? `measured ${fmtUs(b.measured.branchedUs)} branched, ${fmtUs(b.measured.batchedUs)} batched on ${b.measured.device}; ${predicted}`
    : predicted;
  if (b.tenants.length === 0) return `branches     none: ${b.measured ? 'batching measured faster' : 'the cost model predicts batching faster'} (${why})`;
  return `branches     ${b.tenants.length} tenants as parallel branches, not batched with their equals (${why}): ${idsText(b.tenants)}`;
}
