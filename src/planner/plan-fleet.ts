// planFleet: concretize every tenant → lower to steps → align into stages → launches → memory plan.
import { fail } from '../../ir/errors.js';
import { byteSize } from '../../ir/dtype.js';
import { numel } from '../../ir/shape.js';
import { type ConcreteTenant, concretizeTenant } from './concretize.js';
import { type CostModel, H100_FP32, floorUs, launchUs, tickIoUs } from './cost.js';
import type { ArenaId } from '../../ir/contract/launch.js';
import { type DraftLaunch, buildLaunches, resolveLaunches, stepWork } from './launches.js';
import { lowerTenant, type LoweredTenant } from './lower.js';
import { rowLocalValues } from './row-local.js';
import type { ConvKernel, FleetState } from './lower-context.js';
import { type ActItem, type Placement, planActivations, planActivationsByRegion, planIo, planWeights } from './memory.js';
import { PRECISIONS, type Plan, type PlannedTenant, type Precision, type TenantIO, type TenantInput, type WeightBlob } from '../../ir/contract/plan.js';
import { scheduleSequential, scheduleSteps } from './schedule.js';
import { DEFAULT_MAX_LANES, MAX_LANES, criticalLanes, lanesPay, simulateDraftLanes, tenantGroups, withLanes } from './lanes.js';
import { BRANCHINGS, type Branching, branchKeyed, branchingPays, chooseBranches, estimateTickUs } from './branches.js';
import { type Buf, type BufKind, stepReads, stepWrites } from './steps.js';
import { LIMIT_FLAGS, type SizeLimits, formatBytes, resolveLimits } from '../../ir/limits.js';

export interface PlanOptions {
  readonly precision?: Precision;
  readonly costModel?: CostModel;
  // 'space-time' (default): align equal steps of different tenants into shared launches. 'none': every
  // tenant step is its own launch, tenants one after another, same lowering: the time-only baseline of
  // `loom bench`.
  readonly grouping?: 'space-time' | 'none';
  // Size limits (ir/limits.ts; defaults DEFAULT_LIMITS): every buffer is checked as lowering creates it, and
  // the arenas once laid out, so no plan is made that one GPU cannot load.
  readonly limits?: Partial<SizeLimits>;
  // Parallel lanes of the tick's DAG (src/planner/lanes.ts; default DEFAULT_MAX_LANES, 1: one stream). Grouping
  // 'none' plans one lane unless asked for more (one lane: the time-only baseline; several: each tenant's chain
  // on a lane of its own, space-only in one graph).
  readonly maxLanes?: number;
  // Batch or branch (src/planner/branches.ts): 'never' (default) always batches; 'auto' runs each group of
  // tenants with equal steps that fits the lanes as parallel branches, each tenant's chain on a lane of its own
  // (for the CUDA backend: the CPU backend runs a plan's launches in order, so branches only cost it batching)
  // where the cost model predicts it pays; 'always' branches them whatever it predicts. Grouping 'space-time' only.
  readonly branching?: Branching;
  // Lanes follow chains (default true): the launches serving one set of tenants keep lanes of their own while
  // lanes are left; false: lanes by the cost model's start times alone (the A/B of bench/lanes-ab.ts).
  readonly laneChains?: boolean;
  // Squeeze-and-excite blocks as one generated kernel (src/planner/lower-excite.ts; default true); false: a
  // reduce, two GEMMs and a scale. Its reworked form took one MobileNetV3-Small from 310.7 to 253.4 µs a tick
  // on an H100 (BENCHMARKS.md, stop 18; the first form had been slower than the four launches).
  readonly squeezeExcite?: boolean;
  // Residual adds (and an activation after them) folded into the GEMM before them (default true;
  // src/planner/lower-residual.ts); false: the GEMM and an elementwise launch, as before (the A/B).
  readonly residualEpilogue?: boolean;
  // An f32 conv through im2col adds its bias in the GEMM itself, as one more row of k (default true;
  // src/planner/lower-gemm.ts): no cuBLASLt epilogue takes a per-channel bias, so otherwise every such conv is a
  // GEMM and an epilogue kernel pass over its output. false: the bias in the epilogue, as before (the A/B).
  readonly convBiasInGemm?: boolean;
  // How an f32 conv that needs im2col runs (src/planner/lower-gemm.ts): 'im2col' (default) writes its columns with
  // an im2col launch and multiplies them with cuBLAS; 'implicit' runs it as one generated kernel (KernelOp conv:
  // the columns formed in the GEMM's tile loads, bias, residual and activation fused). Not the default until
  // measured faster on a GPU.
  readonly convKernel?: ConvKernel;
}

// Where each buffer went (for tests and inspect): act items carry their live stages.
export interface BufferReport {
  readonly id: number;
  readonly tenant: number;
  readonly name: string;
  readonly arena: ArenaId;
  readonly offset: number;
  readonly bytes: number;
  readonly firstStage: number; // -1 when not an act buffer
  readonly lastStage: number;
}

export interface DetailedPlan {
  readonly plan: Plan;
  readonly buffers: readonly BufferReport[];
  readonly stepsPerTenant: readonly number[];
}

export function planFleet(tenants: readonly TenantInput[], opts: PlanOptions = {}): Plan {
  return planFleetDetailed(tenants, opts).plan;
}

export function planFleetDetailed(tenants: readonly TenantInput[], opts: PlanOptions = {}): DetailedPlan {
  checkFleet(tenants, opts);
  return planConcreteFleetDetailed(
    tenants,
    tenants.map((t) => concretizeTenant(t)),
    opts,
  );
}

// What planning needs of a tenant once its graph is concrete (concretizeTenant's output holds the graph).
export type PlannedTenantSpec = Omit<TenantInput, 'graph'>;

// Plans tenants concretized beforehand (the pipeline's lower stage, or its dump read back).
export function planConcreteFleet(tenants: readonly PlannedTenantSpec[], concrete: readonly ConcreteTenant[], opts: PlanOptions = {}): Plan {
  return planConcreteFleetDetailed(tenants, concrete, opts).plan;
}

function checkFleet(tenants: readonly PlannedTenantSpec[], opts: PlanOptions): void {
  const precision = opts.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) fail('USAGE', `planFleet: precision '${String(precision)}' is not supported (supported: ${PRECISIONS.join(', ')})`);
  const grouping = opts.grouping ?? 'space-time';
  if (grouping !== 'space-time' && grouping !== 'none')
    fail('USAGE', `planFleet: grouping '${String(grouping)}' is not supported (expected space-time or none)`);
  if (opts.branching !== undefined && !BRANCHINGS.includes(opts.branching))
    fail('USAGE', `planFleet: branching '${String(opts.branching)}' is not supported (expected ${BRANCHINGS.join(', ')})`);
  if (opts.maxLanes !== undefined && !(Number.isInteger(opts.maxLanes) && opts.maxLanes >= 1 && opts.maxLanes <= MAX_LANES))
    fail('USAGE', `planFleet: maxLanes ${String(opts.maxLanes)} is outside 1..${MAX_LANES}`);
  if (tenants.length === 0) fail('USAGE', 'planFleet: no tenants');
  const ids = new Set<string>();
  for (const t of tenants) {
    if (ids.has(t.id)) fail('USAGE', `planFleet: tenant id '${t.id}' appears twice`);
    ids.add(t.id);
  }
}

function planConcreteFleetDetailed(tenants: readonly PlannedTenantSpec[], concrete: readonly ConcreteTenant[], opts: PlanOptions): DetailedPlan {
  checkFleet(tenants, opts);
  if (concrete.length !== tenants.length) fail('USAGE', `planFleet: ${tenants.length} tenants but ${concrete.length} concrete graphs`);
  const precision = opts.precision ?? 'fp32';
  const cost = opts.costModel ?? H100_FP32;
  const grouping = opts.grouping ?? 'space-time';
  const limits = resolveLimits(opts.limits);
  const fleet: FleetState = {
    bufs: [],
    steps: [],
    gemmDType: precision === 'bf16' ? 'bf16' : precision === 'fp16' ? 'f16' : 'f32',
    limits,
    squeezeExcite: opts.squeezeExcite !== false,
    residualEpilogue: opts.residualEpilogue ?? true,
    convBiasInGemm: opts.convBiasInGemm ?? true,
    convKernel: opts.convKernel ?? 'im2col',
  };
  const lowered: LoweredTenant[] = concrete.map((c, i) => {
    const t = tenants[i]!;
    return lowerTenant(fleet, i, t.id, c.graph, rowLocalValues(c, t.maxBatch), t.maxBatch);
  });
  const { bufs, steps } = fleet;

  let { stageOf, stages } = grouping === 'none' ? scheduleSequential(steps) : scheduleSteps(steps);
  // Lanes: as many as asked for; by default up to DEFAULT_MAX_LANES where the cost model says they pay
  // (lanesPay), else the single-stream plan with its grouped GEMMs.
  const laneCap = grouping === 'none' ? (opts.maxLanes ?? 1) : (opts.maxLanes ?? DEFAULT_MAX_LANES);
  let maxLanes = laneCap;
  const laneDrafts = buildLaunches(steps, stageOf, stages, cost, precision, maxLanes > 1);
  let drafts = laneDrafts;
  if (maxLanes > 1 && opts.maxLanes === undefined && !lanesPay(drafts, cost, precision, maxLanes)) {
    maxLanes = 1;
    drafts = buildLaunches(steps, stageOf, stages, cost, precision, false);
  }
  // Batch or branch (branches.ts): groups that fit the lanes run as parallel branches, a lane per tenant
  const branches =
    grouping === 'space-time'
      ? chooseBranches(tenantGroups(laneDrafts, tenants.length), laneCap, opts.maxLanes !== undefined, opts.branching ?? 'never')
      : null;
  // ... where the cost model predicts the branched tick no slower than the batched one (branchingPays)
  let branchCost: { readonly tenants: number[]; readonly batchedUs: number; readonly branchedUs: number } | null = null;
  if (branches !== null) {
    const batchedUs = estimateTickUs(drafts, cost, precision, maxLanes);
    const keyed = branchKeyed(steps, branches.branched);
    const schedule = scheduleSteps(keyed);
    const branchedDrafts = buildLaunches(keyed, schedule.stageOf, schedule.stages, cost, precision, true);
    const branchedUs = estimateTickUs(branchedDrafts, cost, precision, branches.lanes);
    const pays = opts.branching === 'always' || branchingPays(branchedUs, batchedUs);
    branchCost = { tenants: pays ? [...branches.branched].sort((a, b) => a - b) : [], batchedUs, branchedUs };
    if (pays) {
      ({ stageOf, stages } = schedule);
      drafts = branchedDrafts;
      maxLanes = branches.lanes;
    }
  }

  // weights: each GEMM launch's operands back to back, then the rest in creation order
  const weightOrder: number[] = [];
  const gemmGroups = (d: DraftLaunch) => (d.kind === 'gemm' ? [d.steps] : d.kind === 'gemm_grouped' ? d.groups : []);
  for (const d of drafts) {
    for (const g of gemmGroups(d)) {
      for (const pick of ['b', 'bias', 'a'] as const) {
        for (const s of g)
          for (const e of s.entries) {
            const r = e[pick];
            if (r !== null && bufs[r.buf]!.kind === 'weight') weightOrder.push(r.buf);
          }
      }
    }
  }
  for (const b of bufs) if (b.kind === 'weight') weightOrder.push(b.id);
  const weights = planWeights(bufs, weightOrder);

  // activations: live stages per buffer; a GEMM launch's outputs form one contiguous item
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  for (const s of steps) {
    const st = stageOf[s.id]!;
    for (const b of [...stepReads(s), ...stepWrites(s)]) {
      if (bufs[b]!.kind !== 'act') continue;
      first.set(b, Math.min(first.get(b) ?? st, st));
      last.set(b, Math.max(last.get(b) ?? st, st));
    }
  }
  const inItem = new Set<number>();
  const items: ActItem[] = [];
  for (const d of drafts) {
    for (const g of gemmGroups(d)) {
      const cs = [...new Set(g.flatMap((s) => s.entries.map((e) => e.c.buf)))].filter((b) => bufs[b]!.kind === 'act' && !inItem.has(b));
      if (cs.length < 2) continue;
      for (const b of cs) inItem.add(b);
      items.push({ bufs: cs, first: Math.min(...cs.map((b) => first.get(b)!)), last: Math.max(...cs.map((b) => last.get(b)!)) });
    }
  }
  for (const b of bufs) {
    if (b.kind === 'act' && first.has(b.id) && !inItem.has(b.id)) items.push({ bufs: [b.id], first: first.get(b.id)!, last: last.get(b.id)! });
  }
  const act = planActivationMemory(bufs, items, maxLanes > 1 ? tenantGroups(drafts, tenants.length) : null, limits.maxActivationsBytes);
  const io = planIo(
    bufs,
    lowered.map((l) => ({ inputs: l.inputBufs, outputs: l.outputBufs })),
  );
  checkArena(bufs, 'weights', weights.size, limits.maxWeightsBytes, LIMIT_FLAGS.maxWeightsBytes, ['weight'], () =>
    whatFits(bufs, tenants, limits.maxWeightsBytes),
  );
  checkArena(bufs, 'activation', act.size, limits.maxActivationsBytes, LIMIT_FLAGS.maxActivationsBytes, ['act']);
  checkArena(bufs, 'io', io.size, limits.maxIoBytes, LIMIT_FLAGS.maxIoBytes, ['input', 'output']);

  const placement = (b: number): Placement => {
    const buf = bufs[b]!;
    switch (buf.kind) {
      case 'weight':
        return { arena: 'weights', offset: weights.offsets.get(b)! };
      case 'act':
        return { arena: 'act', offset: act.offsets.get(b) ?? 0 };
      case 'input':
      case 'output':
        return { arena: 'io', offset: io.offsets.get(b)! };
      default: {
        const never: never = buf.kind;
        throw new Error(`unknown buffer kind ${String(never)}`);
      }
    }
  };
  const { launches, lanes } = withLanes(
    resolveLaunches(drafts, (r) => placement(r.buf), cost, precision),
    maxLanes,
    opts.laneChains ?? true,
  );
  // the laned tick as the device would run it: side-by-side launches share its throughput (lane-sim.ts)
  const lanesUs =
    lanes.lanes > 1
      ? simulateDraftLanes(
          drafts,
          launches.map((l) => l.lane ?? 0),
          launches.map((l) => l.after ?? []),
          cost,
          precision,
        )
      : 0;
  const priority = criticalLanes(launches, lanes.lanes);

  const layersOf = new Array<number>(tenants.length).fill(0); // steps per tenant, counted once (not a scan per tenant)
  for (const s of steps) layersOf[s.tenant] = (layersOf[s.tenant] ?? 0) + 1;
  const plannedTenants: PlannedTenant[] = tenants.map((t, i) => {
    const c = concrete[i]!;
    const l = lowered[i]!;
    const ioOf = (list: typeof c.inputs, bufIds: readonly number[]): TenantIO[] =>
      list.map((x, j) => ({
        name: x.name,
        dtype: x.dtype,
        shape: x.shape,
        batchAxis: x.batchAxis,
        ref: { arena: 'io', offset: io.offsets.get(bufIds[j]!)! },
        bytes: numel(x.shape) * byteSize(x.dtype),
      }));
    return {
      id: t.id,
      model: t.model,
      maxBatch: t.maxBatch,
      sloMs: t.sloMs,
      ...(t.checkFinite === true ? { checkFinite: true as const } : {}),
      layers: layersOf[i] ?? 0,
      inputs: ioOf(c.inputs, l.inputBufs),
      outputs: ioOf(c.outputs, l.outputBufs),
    };
  });

  const seqs = new Map<number, number>(); // per tenant: its weights so far, in creation (buffer id) order
  const blobs: WeightBlob[] = bufs
    .filter((b) => b.kind === 'weight')
    .map((b) => {
      const seq = seqs.get(b.tenant) ?? 0;
      seqs.set(b.tenant, seq + 1);
      return { offset: weights.offsets.get(b.id)!, tensor: b.weight!, tenant: b.tenant, seq };
    })
    .sort((a, b) => a.offset - b.offset);

  const ioBytes = plannedTenants.reduce((a, t) => a + [...t.inputs, ...t.outputs].reduce((b, x) => b + x.bytes, 0), 0);
  const ioUs = tickIoUs(cost, ioBytes);
  const totalFlops = steps.reduce((a, s) => a + s.flops, 0);
  const totalBytes = steps.reduce((a, s) => a + s.bytes, 0);
  const plan: Plan = {
    precision,
    tenants: plannedTenants,
    launches,
    stages,
    ...(lanes.lanes > 1 ? { lanes: lanes.lanes } : {}),
    ...(priority.length > 0 ? { priorityLanes: priority } : {}),
    arenas: { weights: weights.size, act: act.size, io: io.size, actWithoutReuse: act.withoutReuse },
    weights: blobs,
    cost: {
      predictedTickUs: launches.reduce((a, l) => a + l.info.predictedUs, 0) + ioUs,
      ungroupedTickUs: steps.reduce((a, s) => a + launchUs(cost, stepWork(s, precision)), 0),
      floorUs: floorUs(cost, totalFlops, totalBytes),
      device: cost.device,
      ...(lanes.lanes > 1 ? { criticalPathUs: lanesUs } : {}),
      ...(branchCost !== null ? { branches: branchCost } : {}),
      ...(cost.calibrated ? { tickIoUs: ioUs, profile: { name: cost.calibrated.profile.name, hash: cost.calibrated.profile.hash } } : {}),
    },
  };
  const buffers: BufferReport[] = bufs.map((b) => {
    const p = placement(b.id);
    return {
      id: b.id,
      tenant: b.tenant,
      name: b.name,
      arena: p.arena,
      offset: p.offset,
      bytes: b.bytes,
      firstStage: first.get(b.id) ?? -1,
      lastStage: last.get(b.id) ?? -1,
    };
  });
  return { plan, buffers, stepsPerTenant: lowered.map((l) => l.steps) };
}

// An arena past its limit: the plan could not be loaded on the card the limits describe. Names the biggest
// buffers in it (tenant/value), which is where a fix starts.
function checkArena(bufs: readonly Buf[], arena: string, size: number, max: number, flag: string, kinds: readonly BufKind[], advice?: () => string): void {
  if (size <= max) return;
  const top = bufs
    .filter((b) => kinds.includes(b.kind))
    .sort((a, b) => b.bytes - a.bytes || a.id - b.id)
    .slice(0, 3)
    .map((b) => `'${b.name}' ${formatBytes(b.bytes)}`);
  fail(
    'LIMIT',
    `the ${arena} arena would take ${formatBytes(size)}, past the limit of ${formatBytes(max)} (${flag}); biggest: ${top.join(', ')}${advice ? `. ${advice()}` : ''}`,
  );
}

// What would fit a weights limit: how many tenants, in manifest order, and how many shards of it the fleet needs
// (each tenant's weights whole on one device; `loom compile --shards` places them).
function whatFits(bufs: readonly Buf[], tenants: readonly PlannedTenantSpec[], max: number): string {
  const per = new Array<number>(tenants.length).fill(0);
  for (const b of bufs) if (b.kind === 'weight') per[b.tenant] = (per[b.tenant] ?? 0) + b.bytes;
  let n = 0;
  for (let used = 0; n < per.length && used + per[n]! <= max; n++) used += per[n]!;
  const biggest = per.reduce((a, b) => Math.max(a, b), 0);
  const total = per.reduce((a, b) => a + b, 0);
  if (biggest > max) return `Tenant '${tenants[per.indexOf(biggest)]!.id}' alone has ${formatBytes(biggest)} of weights: no device of this limit holds it`;
  return `The first ${n} of ${tenants.length} tenants fit (${formatBytes(total / tenants.length)} of weights each on average); the whole fleet needs at least ${Math.ceil(total / max)} devices: loom compile --shards N --device-memory GB`;
}

// On lanes, each group of tenants that share launches gets its own activation region, so groups wait for each
// other only where their data says (a shared arena made 136 of the demo fleet's 176 cross-lane waits: write
// after read on reused bytes). One shared arena when there is one group, or when the regions together would
// pass the activation limit.
function planActivationMemory(bufs: readonly Buf[], items: readonly ActItem[], groupOf: readonly number[] | null, limit: number) {
  if (groupOf === null || new Set(groupOf).size < 2) return planActivations(bufs, items);
  const regions = planActivationsByRegion(bufs, items, (it) => groupOf[bufs[it.bufs[0]!]!.tenant]!);
  return regions.size <= limit ? regions : planActivations(bufs, items);
}
