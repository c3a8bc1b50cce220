// The typed client of a plan: a TypeScript module with one function per tenant whose input and output
// types carry the tenant's names, element types (Float32Array, BigInt64Array, ...) and shapes, calling a
// running `loom serve` (OIP v2) or a plan loaded in process. Built with ts-morph from the plan's tenant
// tables; the fixed transport code is codegen/client-support/support.ts, which checks inputs with the
// validator runTick and `loom serve` use (ir/contract/tenant-io.ts): both are copied in as text, so the
// module imports nothing.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { DType } from '../ir/dtype.js';
import { Worker } from 'node:worker_threads';
import { LoomError, type LoomErrorCode, fail } from '../ir/errors.js';
import type { PlannedTenant, TenantIO } from '../ir/contract/plan.js';
import { TYPED_ARRAY_NAMES } from '../ir/contract/tenant-io.js';

export const CLIENT_FILE = 'client.ts';

// The typed array of each dtype, as the shared tenant-I/O check (embedded in every client) expects it.
const arrayType = (d: DType): string => TYPED_ARRAY_NAMES[d] ?? fail('PLAN_INVALID', `no typed array for dtype '${d}'`);

// The client's fixed text comes from real source files (tsc checks them), support first importing only from
// the validator; paths from the repository root. From dist/codegen/ they are found in the source tree, as
// the templates are (tsc emits only .js).
const SUPPORT_SOURCE = 'codegen/client-support/support.ts';
const VALIDATOR_SOURCE = 'ir/contract/tenant-io.ts';

function sourceRoot(): string {
  const here = import.meta.dirname;
  for (const root of [path.resolve(here, '..'), path.resolve(here, '../..')]) if (existsSync(path.join(root, SUPPORT_SOURCE))) return root;
  throw new Error(`the client support source ${SUPPORT_SOURCE} was not found above ${here}`);
}

// A source file's text without its header comment (written for this project's readers) and its imports,
// which must all be of the validator: its text is in the client too.
function embeddable(root: string, file: string): string {
  const lines = readFileSync(path.join(root, file), 'utf8').split('\n');
  let i = 0;
  while (i < lines.length && (lines[i]!.startsWith('//') || lines[i]!.trim() === '')) i++;
  const text = lines.slice(i).join('\n');
  const body = text.replace(/^import\s[^;]*?from\s+'([^']+)';\n/gm, (_, from: string) => {
    if (path.posix.join(path.posix.dirname(file), from.replace(/\.js$/, '.ts')) !== VALIDATOR_SOURCE)
      throw new Error(`${file} imports '${from}': the client can embed only ${VALIDATOR_SOURCE}`);
    return '';
  });
  if (/^import\s/m.test(body)) throw new Error(`${file}: an import the client generator cannot remove (write it on one line, ending in ';')`);
  return body.trim();
}

let supportText: string | null = null;

// The validator, then the support code: the client's fixed part.
export function clientSupportText(): string {
  if (supportText === null) {
    const root = sourceRoot();
    supportText = `// ---- input checks: the validator runTick and \`loom serve\` use (${VALIDATOR_SOURCE}) ----\n\n${embeddable(root, VALIDATOR_SOURCE)}\n\n// ---- types, calls and transports ----\n\n${embeddable(root, SUPPORT_SOURCE)}`;
  }
  return supportText;
}

// Top-level names of the fixed text, which a tenant's function and type names must not take.
function supportNames(): string[] {
  return [
    ...clientSupportText().matchAll(
      /^(?:export )?(?:declare )?(?:abstract )?(?:async )?(?:function|const|let|var|class|interface|type|enum)\s+([A-Za-z_$][\w$]*)/gm,
    ),
  ].map((m) => m[1]!);
}

// Names the client declares besides the tenants', and words that cannot name a function.
const RESERVED = [
  'TENANTS',
  'LoomClient',
  'createClient',
  'break',
  'case',
  'catch',
  'class',
  'const',
  'continue',
  'debugger',
  'default',
  'delete',
  'do',
  'else',
  'enum',
  'export',
  'extends',
  'false',
  'finally',
  'for',
  'function',
  'if',
  'import',
  'in',
  'instanceof',
  'new',
  'null',
  'return',
  'super',
  'switch',
  'this',
  'throw',
  'true',
  'try',
  'typeof',
  'var',
  'void',
  'while',
  'with',
  'let',
  'static',
  'yield',
  'await',
  'implements',
  'interface',
  'package',
  'private',
  'protected',
  'public',
  'arguments',
  'eval',
  'undefined',
];
let taken: ReadonlySet<string> | null = null;

interface TenantNames {
  readonly fn: string; // mlpA
  readonly type: string; // MlpA
}

// Tenant ids are letters, digits, '.', '_' and '-': 'fraud-a.v2' → fraudAV2 / FraudAV2, unique in the module.
export function tenantNames(ids: readonly string[]): TenantNames[] {
  const used = new Set<string>();
  const reserved = (taken ??= new Set([...RESERVED, ...supportNames()]));
  return ids.map((id) => {
    const words = id.split(/[^A-Za-z0-9]+/).filter((w) => w !== '');
    const pascal = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || 'Tenant';
    let type = /^[0-9]/.test(pascal) ? `Tenant${pascal}` : pascal;
    let fn = type[0]!.toLowerCase() + type.slice(1);
    if (reserved.has(fn) || reserved.has(type)) {
      fn += 'Tenant';
      type += 'Tenant';
    }
    const base = { fn, type };
    for (let i = 2; used.has(fn.toLowerCase()); i++) {
      fn = `${base.fn}${i}`;
      type = `${base.type}${i}`;
    }
    used.add(fn.toLowerCase());
    return { fn, type };
  });
}

function propName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

// readonly [rows: number, d1: 32]: the batch axis is the call's row count, the rest are fixed.
function shapeType(io: TenantIO): string {
  if (io.shape.length === 0) return 'readonly []';
  return `readonly [${io.shape.map((d, i) => (i === io.batchAxis ? 'rows: number' : `d${i}: ${d}`)).join(', ')}]`;
}

function oneRow(io: TenantIO): number {
  return io.shape.reduce((a, d, i) => a * (i === io.batchAxis ? 1 : d), 1);
}

function shapeText(io: TenantIO): string {
  const dims = io.shape.map((d, i) => (i === io.batchAxis ? 'rows' : String(d)));
  const rows = io.batchAxis !== null ? ` — rows 1..${io.shape[io.batchAxis]} on axis ${io.batchAxis}` : ' — fixed shape';
  return `${io.dtype} [${dims.join(', ')}]${rows}`;
}

function tenantDoc(t: PlannedTenant): string {
  const lines = [
    `Tenant \`${t.id}\` (model \`${t.model}\`): 1..${t.maxBatch} row${t.maxBatch === 1 ? '' : 's'} per call${t.sloMs !== null ? `, SLO ${t.sloMs} ms` : ''}.`,
    '',
    'Inputs:',
    ...t.inputs.map((io) => `- \`${io.name}\`: ${arrayType(io.dtype)}, ${shapeText(io)}`),
    'Outputs:',
    ...t.outputs.map((io) => `- \`${io.name}\`: ${arrayType(io.dtype)}, ${shapeText(io)}`),
  ];
  return lines.join('\n');
}

function specLiteral(t: PlannedTenant): string {
  const io = (x: TenantIO) =>
    `{ name: ${JSON.stringify(x.name)}, dtype: '${x.dtype}', shape: [${x.shape.join(', ')}], batchAxis: ${x.batchAxis === null ? 'null' : x.batchAxis} }`;
  return `{\n    id: ${JSON.stringify(t.id)},\n    maxBatch: ${t.maxBatch},\n    inputs: [\n      ${t.inputs.map(io).join(',\n      ')},\n    ],\n    outputs: [\n      ${t.outputs.map(io).join(',\n      ')},\n    ],\n  }`;
}

export interface ClientOptions {
  readonly planName?: string; // shown in the header comment
}

// The module's text. ts-morph is loaded on first use: it brings the TypeScript compiler with it. Every
// declaration goes in with one addStatements call: ts-morph re-parses the whole file per insertion, so adding
// them one by one is quadratic in the tenants (120 tenants took 25 s).
export async function renderClient(tenants: readonly PlannedTenant[], opts: ClientOptions = {}): Promise<string> {
  if (tenants.length === 0) fail('USAGE', 'a client needs a plan with at least one tenant');
  const { Project, StructureKind, VariableDeclarationKind } = await import('ts-morph');
  type Statement = import('ts-morph').StatementStructures;
  const project = new Project({ useInMemoryFileSystem: true, compilerOptions: { strict: true } });
  const sf = project.createSourceFile(CLIENT_FILE, '', { overwrite: true });
  const body = project.createSourceFile('body.ts', '', { overwrite: true });
  const names = tenantNames(tenants.map((t) => t.id));
  const first = names[0]!;

  const statements: Statement[] = [
    {
      kind: StructureKind.VariableStatement,
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: ["Every tenant's inputs and outputs as the plan lays them out (shapes at maxBatch rows)."],
      declarations: [
        {
          name: 'TENANTS',
          initializer: `{\n  ${tenants.map((t) => `${JSON.stringify(t.id)}: ${specLiteral(t)}`).join(',\n  ')},\n} as const satisfies Readonly<Record<string, TenantSpec>>`,
        },
      ],
    },
  ];

  tenants.forEach((t, i) => {
    const n = names[i]!;
    statements.push(
      {
        kind: StructureKind.Interface,
        name: `${n.type}Inputs`,
        isExported: true,
        docs: [`Inputs of tenant \`${t.id}\`: flat data (rows follow from its length) or \`{ data, shape }\`.`],
        properties: t.inputs.map((io) => ({
          name: propName(io.name),
          isReadonly: true,
          type: `Input<${arrayType(io.dtype)}, ${shapeType(io)}>`,
          docs: [shapeText(io)],
        })),
      },
      {
        kind: StructureKind.Interface,
        name: `${n.type}Outputs`,
        isExported: true,
        docs: [`Outputs of tenant \`${t.id}\`, with as many rows as the call's inputs.`],
        properties: t.outputs.map((io) => ({
          name: propName(io.name),
          isReadonly: true,
          type: `Tensor<'${io.dtype}', ${arrayType(io.dtype)}, ${shapeType(io)}>`,
          docs: [shapeText(io)],
        })),
      },
      {
        kind: StructureKind.Function,
        name: n.fn,
        isExported: true,
        docs: [`${tenantDoc(t)}\n@param transport httpTransport(url) or inProcessTransport(plan)`],
        parameters: [
          { name: 'transport', type: 'Transport' },
          { name: 'inputs', type: `${n.type}Inputs` },
        ],
        returnType: `Promise<${n.type}Outputs>`,
        statements: [`return callTenant<${n.type}Outputs>(transport, TENANTS[${JSON.stringify(t.id)}], inputs);`],
      },
    );
  });

  statements.push(
    {
      kind: StructureKind.Interface,
      name: 'LoomClient',
      isExported: true,
      docs: ['One method per tenant, bound to a transport.'],
      properties: tenants.map((t, i) => ({
        name: names[i]!.fn,
        isReadonly: true,
        type: `(inputs: ${names[i]!.type}Inputs) => Promise<${names[i]!.type}Outputs>`,
        docs: [tenantDoc(t)],
      })),
    },
    {
      kind: StructureKind.Function,
      name: 'createClient',
      isExported: true,
      docs: ["The plan's tenants as methods: createClient(httpTransport(url)) or createClient(inProcessTransport(plan))."],
      parameters: [{ name: 'transport', type: 'Transport' }],
      returnType: 'LoomClient',
      statements: [`return {\n${names.map((n) => `  ${n.fn}: (inputs) => ${n.fn}(transport, inputs),`).join('\n')}\n};`],
    },
  );
  // the declarations are one batch in a file of their own: a batch is not set off from text before it
  body.addStatements(statements);
  sf.addStatements([
    `// Generated by \`loom compile\` (codegen/client.ts)${opts.planName ? ` for the plan ${JSON.stringify(opts.planName)}` : ''}: one typed function per tenant`,
    `// (${tenants.length} tenant${tenants.length === 1 ? '' : 's'}). Do not edit; compile the fleet again instead. It imports nothing:`,
    "//   const client = createClient(httpTransport('http://localhost:8080'));       // a running `loom serve`",
    "//   const client = createClient(inProcessTransport(await loadPlan('plan/')));   // import { loadPlan } from 'loom'",
    `//   const { ${propName(tenants[0]!.outputs[0]?.name ?? 'output')}: y } = await client.${first.fn}({ ${tenants[0]!.inputs.map((io) => `${propName(io.name)}: new ${arrayType(io.dtype)}(${oneRow(io)})`).join(', ')} });`,
    clientSupportText(),
  ]);

  for (const f of [sf, body]) f.formatText({ indentSize: 2, convertTabsToSpaces: true });
  return `${sf.getFullText()}\n${body.getFullText()}`;
}

// renderClient on a worker thread: the same text, while this thread goes on (loom compile writes weights.bin
// meanwhile; a 10,000-tenant client takes ~10 s of ts-morph). Where a worker cannot start, here.
export function renderClientInWorker(tenants: readonly PlannedTenant[], opts: ClientOptions = {}): Promise<string> {
  if (tenants.length === 0) return renderClient(tenants, opts); // its error, here
  const entry = clientWorkerEntry();
  let worker: Worker;
  try {
    worker = new Worker(entry.script, { workerData: { tenants, opts }, eval: entry.eval, name: 'loom-client' });
  } catch {
    return renderClient(tenants, opts);
  }
  return new Promise<string>((resolve, reject) => {
    let settled = false;
    worker.once('message', (m: { text?: string; error?: string; code?: LoomErrorCode }) => {
      settled = true;
      if (m.text !== undefined) resolve(m.text);
      else
        reject(
          m.code !== undefined
            ? new LoomError(m.code, m.error ?? 'rendering the typed client failed')
            : new Error(`rendering the typed client failed: ${m.error}`),
        );
      void worker.terminate();
    });
    worker.once('error', (e) => {
      if (!settled) reject(new Error(`the typed client's worker thread failed: ${e.message}`));
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the typed client's worker thread exited (${code}) without a client`));
      settled = true;
    });
  });
}

// The worker's entry: the compiled .js beside this file, or (tests and tsx, running the .ts sources) a script
// that registers tsx's loader inside the worker and then imports the .ts (a worker's `--import tsx` execArgv
// does not take on Node 20).
function clientWorkerEntry(): { script: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { script: new URL('./client-worker.js', import.meta.url), eval: false };
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const entry = JSON.stringify(new URL('./client-worker.ts', import.meta.url).href);
  return { script: `import(${api}).then(({ register }) => { register(); return import(${entry}); });`, eval: true };
}

export async function writeClient(tenants: readonly PlannedTenant[], file: string, opts: ClientOptions = {}): Promise<void> {
  const text = await renderClient(tenants, opts);
  try {
    writeFileSync(file, text);
  } catch (e) {
    fail('IO', `cannot write the client '${file}': ${(e as Error).message}`);
  }
}
