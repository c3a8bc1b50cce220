// The files a pipeline stage's dump is made of, beyond the stage's own artifact: dump.json (which stage, the
// fleet's manifest entries as compiled, and per-tenant extras) and one IR text file per tenant. A restart
// (`loom compile --from <stage> <dir>`) reads them back, so everything here must round-trip exactly.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { MAX_TEXT_BYTES, parseJsonText, readTextFile } from '../../ir/files.js';
import type { Graph } from '../../ir/graph.js';
import { parseGraph } from '../../ir/parse.js';
import { printGraph } from '../../ir/print.js';
import type { Manifest } from './manifest.js';

export const DUMP_FILE = 'dump.json';
const DUMP_FORMAT = 'loom-stage-dump';

// The manifest is kept as parsed, not as an ordinary manifest file: `model` must stay the string the fleet
// was compiled with (it is recorded in plan.json), and the models need not exist to restart after import.
export interface DumpRecord<T = unknown> {
  readonly stage: string;
  readonly manifest: Manifest;
  readonly tenants?: readonly T[]; // per-tenant extras, in manifest order
  readonly [extra: string]: unknown; // a stage's own extras
}

export function writeDumpRecord(dir: string, record: DumpRecord): string {
  writeText(path.join(dir, DUMP_FILE), `${JSON.stringify({ format: DUMP_FORMAT, ...record }, null, 1)}\n`);
  return DUMP_FILE;
}

export function readDumpRecord<T = unknown>(dir: string, stage: string, accepts: readonly string[] = [stage]): DumpRecord<T> {
  const text = readDumpText(dir, DUMP_FILE, stage);
  const parsed = parseJsonText(text, { what: `--from ${stage}: '${path.join(dir, DUMP_FILE)}'`, code: 'USAGE' });
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    fail('USAGE', `--from ${stage}: '${path.join(dir, DUMP_FILE)}' is not a loom stage dump`);
  const json = parsed as Partial<DumpRecord<T>> & { format?: string };
  if (json.format !== DUMP_FORMAT || json.manifest === undefined || !Array.isArray(json.manifest.tenants)) {
    fail('USAGE', `--from ${stage}: '${path.join(dir, DUMP_FILE)}' is not a loom stage dump`);
  }
  if (!accepts.includes(String(json.stage))) {
    fail(
      'USAGE',
      `--from ${stage}: '${dir}' holds the dump of stage '${String(json.stage)}', not of ${accepts.join(' / ')} (use --from ${String(json.stage)})`,
    );
  }
  return json as DumpRecord<T>;
}

// A missing or unreadable file of a dump names the file and the stage that should have written it. IR dumps
// hold constants in hex, so the bound is the longest string V8 holds (512 MiB), not a smaller one.
export function readDumpText(dir: string, rel: string, stage: string): string {
  const file = path.join(dir, rel);
  if (!existsSync(file)) fail('IO', `--from ${stage}: '${dir}' lacks ${rel} (write it with \`loom compile --emit ${stage}\`)`);
  return readTextFile(file, { what: `--from ${stage}: dump file`, maxBytes: MAX_TEXT_BYTES });
}

export function tenantIrFile(id: string): string {
  return path.join('ir', `${id}.ir`);
}

// Full constants (hex) so the text parses back into the same graph, bit for bit.
export function writeTenantIr(dir: string, id: string, g: Graph): string {
  const rel = tenantIrFile(id);
  ensureDir(path.join(dir, 'ir'));
  writeText(path.join(dir, rel), printGraph(g, { fullConstants: true }));
  return rel;
}

export function readTenantIr(dir: string, id: string, stage: string): Graph {
  const rel = tenantIrFile(id);
  const text = readDumpText(dir, rel, stage);
  try {
    return parseGraph(text);
  } catch (e) {
    return fail('MODEL_INVALID', `--from ${stage}: ${path.join(dir, rel)}: ${(e as Error).message}`);
  }
}

export function ensureDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    fail('IO', `cannot create output folder '${dir}': ${(e as Error).message}`);
  }
}

export function writeText(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (e) {
    fail('IO', `cannot write '${file}': ${(e as Error).message}`);
  }
}

// Kernel names hash each kernel op's JSON in the planner's key order (codegen/kernels.ts kernelKey), and
// plan.json sorts keys, so a launch dump keeps the ops as written by JSON.stringify (which keeps key order),
// with the numbers JSON cannot hold (±Infinity, NaN, -0) spelled as {"$number": "..."}.
export function orderedJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    typeof x === 'number' && (!Number.isFinite(x) || Object.is(x, -0)) ? { $number: Object.is(x, -0) ? '-0' : String(x) } : x,
  );
}

export function parseOrderedJson(text: string, what = 'ordered JSON'): unknown {
  return parseJsonText(text, {
    what,
    reviver: (_k, x: unknown) => {
      if (typeof x === 'object' && x !== null && '$number' in x && Object.keys(x).length === 1) return Number((x as { $number: string }).$number);
      return x;
    },
  });
}
