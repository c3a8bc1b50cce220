// Validation of a LaunchPlan: structure (parsed JSON has the documented fields and types) and meaning
// (refs inside arena bounds, segments carry their op's fields, programs are well-formed, names exist).
// Run on every write (catches planner bugs at compile time) and every read (corrupt or foreign files).
import { byteSize } from '../ir/dtype.js';
import { fail } from '../ir/errors.js';
import {
  ACTIVATION_KINDS,
  ELT_BINARY,
  ELT_MAX_PARAMS,
  ELT_UNARY,
  type EltInstr,
  GEMM_BIAS_MODES,
  GEMM_DTYPES,
  KERNEL_OPS,
  type KernelOpName,
  LAUNCH_KINDS,
  type Launch,
  POOL_GEOMETRY_FIELDS,
  POOL_MODES,
  REDUCE_KINDS,
  SEGMENT_FIELDS,
  segmentOf,
} from '../ir/contract/launch.js';
import { PRECISIONS } from '../ir/contract/plan.js';
import { accessBytes, launchAccesses } from '../ir/contract/extents.js';
import { laneOrderViolation, launchDependencies } from '../ir/contract/dependencies.js';
import { FORMAT_NAME, FORMAT_VERSION, type LaunchPlan, OLDEST_READ_VERSION } from '../ir/contract/launch-plan.js';
import { arr, bad, bool, dtype, int, num, obj, oneOf, optional, ref, sint, str, ints } from './schema.js';

function activation(x: unknown, p: string): void {
  const a = obj(x, p);
  const kind = oneOf(a.kind, ACTIVATION_KINDS, `${p}.kind`);
  if (kind === 'leaky_relu') num(a.alpha, `${p}.alpha`);
  if (kind === 'clip') num(a.min, `${p}.min`), num(a.max, `${p}.max`);
  if (kind === 'hard_sigmoid') num(a.alpha, `${p}.alpha`), num(a.beta, `${p}.beta`);
}

function gemmProblem(x: unknown, p: string): void {
  const g = obj(x, p);
  for (const k of ['m', 'n', 'k', 'lda', 'ldb', 'ldc', 'ldBias']) int(g[k], `${p}.${k}`);
  bool(g.transA, `${p}.transA`);
  bool(g.transB, `${p}.transB`);
  num(g.alpha, `${p}.alpha`);
  num(g.beta, `${p}.beta`);
  oneOf(g.bias, GEMM_BIAS_MODES, `${p}.bias`);
  if (g.activation !== null) activation(g.activation, `${p}.activation`);
  if (g.residual !== undefined) bool(g.residual, `${p}.residual`);
  if (g.rowsUnit !== undefined) {
    const unit = int(g.rowsUnit, `${p}.rowsUnit`, 1);
    if (g.transA === true) bad(`${p}.rowsUnit`, 'a GEMM with a transposed A cannot scale its m with the rows');
    if ((g.m as number) % unit !== 0) bad(`${p}.rowsUnit`, `${unit} does not divide m = ${String(g.m)}`);
  }
}

function gemmEntry(x: unknown, p: string): void {
  const e = obj(x, p);
  int(e.tenant, `${p}.tenant`);
  ref(e.a, `${p}.a`);
  ref(e.b, `${p}.b`);
  ref(e.c, `${p}.c`);
  if (e.bias !== null) ref(e.bias, `${p}.bias`);
  if (e.residual !== undefined) ref(e.residual, `${p}.residual`);
}

function instr(x: unknown, p: string): void {
  const i = obj(x, p);
  const op = str(i.op, `${p}.op`);
  if (op === 'in' || op === 'param') int(i.i, `${p}.i`);
  else if (op === 'const') num(i.v, `${p}.v`);
  else if (op === 'clip') num(i.min, `${p}.min`), num(i.max, `${p}.max`);
  else if (op === 'act') activation(i.act, `${p}.act`);
  else if (op !== 'where') oneOf(op, [...ELT_UNARY, ...ELT_BINARY], `${p}.op`);
}

function kernelOp(x: unknown, p: string): KernelOpName {
  const o = obj(x, p);
  const op = oneOf(o.op, KERNEL_OPS, `${p}.op`);
  switch (op) {
    case 'eltwise':
      arr(o.program, `${p}.program`).forEach((v, i) => instr(v, `${p}.program[${i}]`));
      bool(o.computeF32, `${p}.computeF32`);
      break;
    case 'reduce':
      oneOf(o.reduce, REDUCE_KINDS, `${p}.reduce`);
      bool(o.selectLast, `${p}.selectLast`);
      break;
    case 'softmax':
      bool(o.log, `${p}.log`);
      break;
    case 'layernorm':
    case 'groupnorm':
      num(o.epsilon, `${p}.epsilon`);
      break;
    case 'pool':
      oneOf(o.mode, POOL_MODES, `${p}.mode`);
      bool(o.countIncludePad, `${p}.countIncludePad`);
      break;
    case 'fill':
      num(o.value, `${p}.value`);
      break;
    case 'im2col':
      if (o.ones !== undefined) bool(o.ones, `${p}.ones`);
      break;
    case 'conv':
      if (o.activation !== null) activation(o.activation, `${p}.activation`);
      bool(o.bias, `${p}.bias`);
      bool(o.residual, `${p}.residual`);
      break;
    case 'depthwise':
      if (o.activation !== null) activation(o.activation, `${p}.activation`);
      break;
    case 'squeeze_excite':
      if (o.act1 !== null) activation(o.act1, `${p}.act1`);
      if (o.act2 !== null) activation(o.act2, `${p}.act2`);
      break;
    default:
      break;
  }
  return op;
}

// The op-specific segment fields (SEGMENT_FIELDS): another op's field is an error. A missing required one is
// reported by extents.ts with the launch's name, after the structure is known to be sound.
const OP_SEGMENT_FIELDS = new Set<string>(Object.values(SEGMENT_FIELDS).flatMap((f) => [...f.required, ...f.optional]));

function segmentFields(op: KernelOpName, s: Record<string, unknown>, p: string): void {
  const own: readonly string[] = [...SEGMENT_FIELDS[op].required, ...SEGMENT_FIELDS[op].optional];
  for (const k of Object.keys(s)) {
    if (OP_SEGMENT_FIELDS.has(k) && !own.includes(k)) bad(`${p}.${k}`, `a '${op}' segment has no '${k}' (it carries ${own.join(', ')})`);
  }
}

function segment(x: unknown, p: string): void {
  const s = obj(x, p);
  int(s.tenant, `${p}.tenant`);
  optional(s, 'shape', p, (v, q) => ints(v, q));
  optional(s, 'dims', p, (v, q) => ints(v, q));
  optional(s, 'count', p, (v, q) => int(v, q));
  optional(s, 'geom', p, (v, q) => {
    const g = obj(v, q);
    for (const k of POOL_GEOMETRY_FIELDS) int(g[k], `${q}.${k}`);
  });
  optional(s, 'outStrides', p, (v, q) => ints(v, q, true));
  optional(s, 'params', p, (v, q) => arr(v, q).forEach((x, k) => num(x, `${q}[${k}]`)));
  arr(s.inputs, `${p}.inputs`).forEach((v, i) => {
    const q = `${p}.inputs[${i}]`;
    const t = obj(v, q);
    ref(t.ref, `${q}.ref`);
    dtype(t.dtype, `${q}.dtype`);
    ints(t.strides, `${q}.strides`, true);
  });
  ref(s.out, `${p}.out`);
  dtype(s.outDType, `${p}.outDType`);
}

function launchInfo(x: unknown, p: string): void {
  const i = obj(x, p);
  int(i.stage, `${p}.stage`);
  str(i.label, `${p}.label`);
  ints(i.tenants, `${p}.tenants`);
  arr(i.sources, `${p}.sources`).forEach((v, k) => str(v, `${p}.sources[${k}]`));
  for (const k of ['flops', 'bytes', 'predictedUs', 'ungroupedUs']) num(i[k], `${p}.${k}`);
}

function launch(x: unknown, p: string): void {
  const l = obj(x, p);
  const kind = oneOf(l.kind, LAUNCH_KINDS, `${p}.kind`);
  int(l.id, `${p}.id`);
  if (l.lane !== undefined) int(l.lane, `${p}.lane`);
  if (l.after !== undefined) ints(l.after, `${p}.after`);
  launchInfo(l.info, `${p}.info`);
  switch (kind) {
    case 'gemm': {
      oneOf(l.dtype, GEMM_DTYPES, `${p}.dtype`);
      gemmProblem(l.problem, `${p}.problem`);
      arr(l.entries, `${p}.entries`).forEach((e, i) => gemmEntry(e, `${p}.entries[${i}]`));
      if (l.strides !== null) {
        const s = obj(l.strides, `${p}.strides`);
        for (const k of ['a', 'b', 'c', 'bias']) sint(s[k], `${p}.strides.${k}`);
      }
      break;
    }
    case 'gemm_grouped':
      oneOf(l.dtype, GEMM_DTYPES, `${p}.dtype`);
      arr(l.groups, `${p}.groups`).forEach((g, gi) => {
        const q = `${p}.groups[${gi}]`;
        gemmProblem(obj(g, q).problem, `${q}.problem`);
        arr(obj(g, q).entries, `${q}.entries`).forEach((e, i) => gemmEntry(e, `${q}.entries[${i}]`));
      });
      break;
    case 'kernel': {
      str(l.kernel, `${p}.kernel`);
      const op = kernelOp(l.op, `${p}.op`);
      arr(l.segments, `${p}.segments`).forEach((s, i) => {
        segment(s, `${p}.segments[${i}]`);
        segmentFields(op, s as Record<string, unknown>, `${p}.segments[${i}]`);
      });
      break;
    }
  }
}

// The files a plan names lie in its own directory: a bare file name, never a path ('../x', '/dev/zero').
function planFile(x: unknown, p: string): void {
  const name = str(x, p);
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(name)) bad(p, `'${name.slice(0, 80)}' is not a file name inside the plan directory`);
}

function tenantIO(x: unknown, p: string): void {
  const t = obj(x, p);
  str(t.name, `${p}.name`);
  dtype(t.dtype, `${p}.dtype`);
  ints(t.shape, `${p}.shape`);
  if (t.batchAxis !== null) int(t.batchAxis, `${p}.batchAxis`);
  ref(t.ref, `${p}.ref`);
  int(t.bytes, `${p}.bytes`);
}

// Structure of a parsed plan.json; format and version first so a foreign or newer file says so plainly.
export function checkStructure(x: unknown): LaunchPlan {
  const root = obj(x, '(root)');
  if (root.format !== FORMAT_NAME) bad('format', `expected "${FORMAT_NAME}", got ${JSON.stringify(root.format)}: not a Loom launch plan`);
  if (typeof root.version !== 'number' || !Number.isInteger(root.version)) bad('version', `expected an integer, got ${JSON.stringify(root.version)}`);
  if (root.version > FORMAT_VERSION)
    bad(
      'version',
      `the plan is format version ${root.version}, this Loom reads versions ${OLDEST_READ_VERSION} to ${FORMAT_VERSION}: recompile the plan with this Loom or upgrade Loom`,
    );
  if (root.version < OLDEST_READ_VERSION)
    bad('version', `format version ${root.version} is not supported (this Loom reads versions ${OLDEST_READ_VERSION} to ${FORMAT_VERSION})`);
  oneOf(root.precision, PRECISIONS, 'precision');
  const arenas = obj(root.arenas, 'arenas');
  for (const k of ['weights', 'act', 'io', 'actWithoutReuse']) int(arenas[k], `arenas.${k}`);
  arr(root.tenants, 'tenants').forEach((v, i) => {
    const p = `tenants[${i}]`;
    const t = obj(v, p);
    str(t.id, `${p}.id`);
    str(t.model, `${p}.model`);
    int(t.maxBatch, `${p}.maxBatch`, 1);
    if (t.sloMs !== null) num(t.sloMs, `${p}.sloMs`);
    if (t.checkFinite !== undefined && t.checkFinite !== true) bad(`${p}.checkFinite`, `expected true or absent, got ${JSON.stringify(t.checkFinite)}`);
    int(t.layers, `${p}.layers`);
    arr(t.inputs, `${p}.inputs`).forEach((io, k) => tenantIO(io, `${p}.inputs[${k}]`));
    arr(t.outputs, `${p}.outputs`).forEach((io, k) => tenantIO(io, `${p}.outputs[${k}]`));
  });
  arr(root.launches, 'launches').forEach((l, i) => launch(l, `launches[${i}]`));
  int(root.stages, 'stages');
  if (root.lanes !== undefined) int(root.lanes, 'lanes', 1);
  if (root.priorityLanes !== undefined) ints(root.priorityLanes, 'priorityLanes');
  const cost = obj(root.cost, 'cost');
  for (const k of ['predictedTickUs', 'ungroupedTickUs', 'floorUs']) num(cost[k], `cost.${k}`);
  if (cost.criticalPathUs !== undefined) num(cost.criticalPathUs, 'cost.criticalPathUs');
  if (cost.branches !== undefined) {
    const br = obj(cost.branches, 'cost.branches');
    num(br.batchedUs, 'cost.branches.batchedUs');
    if (br.branchedUs !== undefined) num(br.branchedUs, 'cost.branches.branchedUs');
    if (br.measured !== undefined) {
      const m = obj(br.measured, 'cost.branches.measured');
      str(m.backend, 'cost.branches.measured.backend');
      str(m.device, 'cost.branches.measured.device');
      num(m.batchedUs, 'cost.branches.measured.batchedUs');
      num(m.branchedUs, 'cost.branches.measured.branchedUs');
    }
    arr(br.tenants, 'cost.branches.tenants').forEach((t, k) => {
      if (int(t, `cost.branches.tenants[${k}]`) >= (root.tenants as unknown[]).length) bad(`cost.branches.tenants[${k}]`, 'not a tenant of the plan');
    });
  }
  str(cost.device, 'cost.device');
  if (cost.tickIoUs !== undefined) num(cost.tickIoUs, 'cost.tickIoUs');
  if (cost.profile !== undefined) {
    const pr = obj(cost.profile, 'cost.profile');
    str(pr.name, 'cost.profile.name');
    if (!/^[0-9a-f]{64}$/.test(str(pr.hash, 'cost.profile.hash'))) bad('cost.profile.hash', 'expected 64 hex digits');
  }
  const w = obj(root.weights, 'weights');
  planFile(w.file, 'weights.file');
  int(w.bytes, 'weights.bytes');
  // exactly one integrity record: the whole file's sha256 (plans written before chunk hashes) or one per chunk
  if (w.chunks === undefined) {
    if (!/^[0-9a-f]{64}$/.test(str(w.sha256, 'weights.sha256'))) bad('weights.sha256', 'expected 64 hex digits');
  } else {
    if (w.sha256 !== undefined) bad('weights.sha256', 'a plan with weights.chunks has no whole-file sha256');
    const c = obj(w.chunks, 'weights.chunks');
    int(c.bytes, 'weights.chunks.bytes');
    if ((c.bytes as number) < 1) bad('weights.chunks.bytes', `expected a positive chunk size, got ${String(c.bytes)}`);
    const hashes = arr(c.sha256, 'weights.chunks.sha256');
    const want = Math.ceil((w.bytes as number) / (c.bytes as number));
    if (hashes.length !== want) bad('weights.chunks.sha256', `expected ${want} chunk hashes for ${String(w.bytes)} bytes, got ${hashes.length}`);
    hashes.forEach((h, i) => {
      if (typeof h !== 'string' || !/^[0-9a-f]{64}$/.test(h)) bad(`weights.chunks.sha256[${i}]`, 'expected 64 hex digits');
    });
  }
  arr(w.blobs, 'weights.blobs').forEach((b, i) => {
    const p = `weights.blobs[${i}]`;
    const o = obj(b, p);
    int(o.offset, `${p}.offset`);
    int(o.bytes, `${p}.bytes`);
    dtype(o.dtype, `${p}.dtype`);
    ints(o.shape, `${p}.shape`);
  });
  const k = obj(root.kernels, 'kernels');
  planFile(k.source, 'kernels.source');
  if (k.cubin !== null) planFile(k.cubin, 'kernels.cubin');
  if (k.arch !== null) str(k.arch, 'kernels.arch');
  const names = obj(k.names, 'kernels.names');
  for (const [id, n] of Object.entries(names)) str(n, `kernels.names.${id}`);
  const grids = obj(k.grids, 'kernels.grids');
  for (const [id, g] of Object.entries(grids)) {
    const p = `kernels.grids.${id}`;
    const o = obj(g, p);
    str(o.name, `${p}.name`);
    int(o.block, `${p}.block`, 1);
    int(o.grid, `${p}.grid`, 1);
    oneOf(o.mapping, ['thread', 'block'] as const, `${p}.mapping`);
    ints(o.work, `${p}.work`);
  }
  return root as unknown as LaunchPlan;
}

function checkProgram(program: readonly EltInstr[], nInputs: number, nParams: number, where: string): void {
  if (nParams > ELT_MAX_PARAMS) fail('PLAN_INVALID', `${where}: ${nParams} params, at most ${ELT_MAX_PARAMS} per segment`);
  let depth = 0;
  program.forEach((ins, pc) => {
    const pop =
      ins.op === 'in' || ins.op === 'const' || ins.op === 'param' ? 0 : ins.op === 'where' ? 3 : (ELT_BINARY as readonly string[]).includes(ins.op) ? 2 : 1;
    if (depth < pop) fail('PLAN_INVALID', `${where}: program instruction ${pc} ('${ins.op}') pops ${pop} values from a stack of ${depth}`);
    if (ins.op === 'in' && ins.i >= nInputs) fail('PLAN_INVALID', `${where}: program reads input ${ins.i} but the segment has ${nInputs} inputs`);
    if (ins.op === 'param' && ins.i >= nParams)
      fail('PLAN_INVALID', `${where}: program instruction ${pc} reads param ${ins.i} but the segment has ${nParams} params`);
    depth += 1 - pop;
  });
  if (depth !== 1) fail('PLAN_INVALID', `${where}: program leaves ${depth} values on the stack, expected 1`);
}

function checkLaunch(plan: LaunchPlan, l: Launch, index: number, prevStage: number): void {
  const where = `launch ${l.id} (${l.kind}, index ${index})`;
  if (l.info.stage < prevStage || l.info.stage >= Math.max(plan.stages, 1))
    fail('PLAN_INVALID', `${where}: stage ${l.info.stage} is out of order or outside 0..${plan.stages - 1}`);
  const tenants =
    l.kind === 'gemm'
      ? l.entries.map((e) => e.tenant)
      : l.kind === 'gemm_grouped'
        ? l.groups.flatMap((g) => g.entries.map((e) => e.tenant))
        : l.segments.map((s) => s.tenant);
  for (const t of tenants) if (t >= plan.tenants.length) fail('PLAN_INVALID', `${where}: tenant index ${t} but the plan has ${plan.tenants.length} tenants`);
  if (l.kind === 'gemm' && l.strides !== null) {
    const s = l.strides;
    const e0 = l.entries[0];
    l.entries.forEach((e, i) => {
      const off = (r: { offset: number } | null, r0: { offset: number } | null, st: number): boolean =>
        r === null || r0 === null || r.offset === r0.offset + i * st;
      if (e0 && !(off(e.a, e0.a, s.a) && off(e.b, e0.b, s.b) && off(e.c, e0.c, s.c) && off(e.bias, e0.bias, s.bias)))
        fail('PLAN_INVALID', `${where}: entry ${i} does not follow the uniform strides`);
    });
  }
  if (l.kind === 'kernel') {
    const op = l.op;
    if (op.op === 'eltwise')
      for (const [i, s] of l.segments.entries()) checkProgram(op.program, s.inputs.length, segmentOf(op, s).params?.length ?? 0, `${where} segment ${i}`);
    const name = plan.kernels.names[String(l.id)];
    const grid = plan.kernels.grids[String(l.id)];
    if (name === undefined || grid === undefined || grid.name !== name)
      fail('PLAN_INVALID', `${where}: kernels.names/grids have no matching entry for this launch`);
    if (grid.work.length !== l.segments.length)
      fail('PLAN_INVALID', `${where}: kernels.grids work has ${grid.work.length} entries for ${l.segments.length} segments`);
  }
  for (const a of launchAccesses(l)) {
    const { start, end } = accessBytes(a);
    const size = plan.arenas[a.ref.arena];
    if (a.hi > a.lo && (start < 0 || end > size))
      fail('PLAN_INVALID', `${a.what}: bytes [${start}, ${end}) fall outside arena '${a.ref.arena}' of ${size} bytes`);
    if (a.written && a.hi > a.lo && a.ref.arena === 'weights') fail('PLAN_INVALID', `${a.what}: writes into the read-only weights arena`);
  }
}

// Meaning: bounds and cross references. Assumes checkStructure (or a typed Plan) as input.
export function checkLaunchPlan(plan: LaunchPlan): void {
  const ids = new Set<number>();
  let prevStage = 0;
  plan.launches.forEach((l, i) => {
    if (ids.has(l.id)) fail('PLAN_INVALID', `launch id ${l.id} appears twice`);
    ids.add(l.id);
    checkLaunch(plan, l, i, prevStage);
    prevStage = l.info.stage;
  });
  checkLanes(plan);
  for (const t of plan.tenants) {
    for (const io of [...t.inputs, ...t.outputs]) {
      if (io.ref.arena !== 'io') fail('PLAN_INVALID', `tenant '${t.id}' I/O '${io.name}': a tenant's I/O slot must lie in arena 'io', not '${io.ref.arena}'`);
      const need = io.shape.reduce((a, b) => a * b, 1) * byteSize(io.dtype);
      if (io.bytes !== need)
        fail('PLAN_INVALID', `tenant '${t.id}' I/O '${io.name}': bytes ${io.bytes} but shape [${io.shape.join(', ')}] of ${io.dtype} takes ${need}`);
      if (io.ref.offset + io.bytes > plan.arenas[io.ref.arena])
        fail(
          'PLAN_INVALID',
          `tenant '${t.id}' I/O '${io.name}': bytes [${io.ref.offset}, ${io.ref.offset + io.bytes}) fall outside arena '${io.ref.arena}' of ${plan.arenas[io.ref.arena]} bytes`,
        );
      if (io.batchAxis !== null && io.batchAxis >= io.shape.length)
        fail('PLAN_INVALID', `tenant '${t.id}' I/O '${io.name}': batchAxis ${io.batchAxis} but rank ${io.shape.length}`);
    }
  }
  if (plan.weights.bytes !== plan.arenas.weights)
    fail('PLAN_INVALID', `weights.bytes ${plan.weights.bytes} differs from arenas.weights ${plan.arenas.weights}`);
  for (const b of plan.weights.blobs) {
    if (b.offset + b.bytes > plan.weights.bytes)
      fail('PLAN_INVALID', `weight blob at ${b.offset} (${b.bytes} bytes) runs past the weights arena of ${plan.weights.bytes} bytes`);
  }
}

// Lanes (FORMAT.md "Lanes"): in range, waits on earlier launches of other lanes, and every dependency of the
// tick's DAG covered — a backend running lanes in parallel trusts this, so a hand-edited plan that would race
// is refused here rather than computing garbage.
function checkLanes(plan: LaunchPlan): void {
  const lanes = plan.lanes ?? 1;
  plan.launches.forEach((l, i) => {
    const where = `launch ${l.id} (${l.kind}, index ${i})`;
    if (l.id !== i && (l.lane !== undefined || l.after !== undefined)) fail('PLAN_INVALID', `${where}: a plan with lanes needs launch ids equal to positions`);
    if ((l.lane ?? 0) >= lanes) fail('PLAN_INVALID', `${where}: lane ${l.lane} but the plan has ${lanes} lane${lanes === 1 ? '' : 's'}`);
    for (const a of l.after ?? []) {
      if (a >= i) fail('PLAN_INVALID', `${where}: waits for launch ${a}, which is not earlier`);
      if ((plan.launches[a]!.lane ?? 0) === (l.lane ?? 0)) fail('PLAN_INVALID', `${where}: waits for launch ${a} of its own lane`);
    }
  });
  const prio = plan.priorityLanes ?? [];
  prio.forEach((l, k) => {
    if (l >= lanes) fail('PLAN_INVALID', `priorityLanes[${k}]: lane ${l} but the plan has ${lanes} lane${lanes === 1 ? '' : 's'}`);
    if (prio.indexOf(l) !== k) fail('PLAN_INVALID', `priorityLanes[${k}]: lane ${l} is named twice`);
  });
  if (lanes <= 1) return;
  const violation = laneOrderViolation(plan.launches, launchDependencies(plan.launches));
  if (violation !== null) fail('PLAN_INVALID', `lanes: ${violation}`);
}
