// The per-tenant compile cache (`loom compile --cache DIR`): a tenant's import + canonicalize + lower result,
// keyed by what determines it (the model's bytes, its bound dims, maxBatch, the fleet's precision, Loom's
// version with a hash of its compiler code (location.ts loomBuildId) and the cache format). An unchanged tenant is read back from its entry instead of being decoded,
// folded and lowered again; its model is not even read when its stat matches the recorded hash
// (file-hashes.ts). Entries are shared by tenants with the same key (one model file serving many tenants).
//
// Layout under the cache folder: entries/<key>.tenant (entry.ts), clients/<key>.json (client-cache.ts),
// files/<path hash>.json (stat records).
// Size: after each compile, least recently used entries are deleted until the folder's entries fit maxBytes;
// entries this compile used are kept even past it (pruneReport says so).
import { createHash } from 'node:crypto';
import { closeSync, constants as fsConstants, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import type { ConcreteTenant } from '../planner/index.js';
import type { FleetPrecision, TenantSpec } from '../fleet/manifest.js';
import type { PlannedTenant } from '../../ir/contract/plan.js';
import { fail } from '../../ir/errors.js';
import { CLIENTS_DIR, cachedClient } from './client-cache.js';
import { type Dependency, type ReadResult, readEntry, readEntryLazy, writeEntry } from './entry.js';
import { FileHashes, sha256Hex, statOrNull } from './file-hashes.js';
import { CACHE_FORMAT, DEFAULT_CACHE_MAX_BYTES, loomBuildId } from './location.js';
import { type PreviousPlan, findPreviousPlan, likelyPreviousWeights, recordPlan } from './plan-record.js';
import type { LaunchPlan } from '../../ir/contract/launch-plan.js';
import type { Plan } from '../../ir/contract/plan.js';
import type { WeightsReuse } from '../../codegen/format.js';

// How this compile wrote weights.bin (reported by `loom compile`).
export interface WeightsNote {
  readonly reuse?: WeightsReuse; // kept an earlier plan's bytes
  readonly fullBecause?: string; // else why every byte was written
  readonly passedOver: readonly string[]; // recorded plans not used, and why
  recordError?: string; // the plan could not be recorded for the next compile
}

export interface TenantCacheOptions {
  readonly dir: string;
  readonly maxBytes?: number; // default DEFAULT_CACHE_MAX_BYTES
  // Leave entries' large blobs on disk until the compile needs their bytes (entry.ts readEntryLazy); the
  // tenants handed out then hold stand-ins (ir/deferred.ts), so only a compile that writes the plan directory
  // and nothing from those tenants' graphs asks for it. close() when done.
  readonly lazy?: boolean;
}

const MAX_OPEN_ENTRIES = 512; // entries kept open for their deferred blobs; later ones are read whole

export interface CacheStats {
  hits: number;
  misses: number;
  modelsRead: number; // model files read (imports, and hashing a model whose stat changed)
  written: number;
  bytesWritten: number;
  readonly rejected: { readonly tenant: string; readonly reason: string }[]; // entries found but not trusted
  readonly writeErrors: string[];
}

export interface ImportHooks {
  readonly onModelBytes: (bytes: Uint8Array) => void;
  readonly onExternalFile: (file: string) => void;
}

interface Pending {
  modelSha?: string;
  readonly external: Set<string>;
}

const ENTRY_EXT = '.tenant';
const ENTRIES_DIR = 'entries';

export class TenantCache {
  readonly dir: string;
  readonly maxBytes: number;
  readonly stats: CacheStats = { hits: 0, misses: 0, modelsRead: 0, written: 0, bytesWritten: 0, rejected: [], writeErrors: [] };
  private readonly files: FileHashes;
  private readonly memo = new Map<string, ConcreteTenant>(); // this run's tenants by key
  private readonly pending = new Map<string, Pending>(); // tenants being compiled, by id
  private readonly used = new Set<string>(); // entry files this run read or wrote
  private readonly keys = new Map<string, string>(); // tenant id → the key of its lowered IR (hits, stores, shares)
  private readonly lazy: boolean;
  private readonly open: number[] = []; // descriptors of lazily read entries

  constructor(opts: TenantCacheOptions) {
    this.dir = path.resolve(opts.dir);
    const st = statOrNull(this.dir);
    if (st !== null && !st.isDirectory())
      fail('USAGE', `the tenant cache '${opts.dir}' is not a folder (--cache names a folder; --no-cache compiles without one)`);
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.lazy = opts.lazy === true;
    this.files = new FileHashes(path.join(this.dir, 'files'));
  }

  // The tenant's lowered IR if the cache holds it for the model as it is now; undefined: compile it (with
  // importHooks, then store).
  lookup(t: TenantSpec, precision: FleetPrecision): ConcreteTenant | undefined {
    // a model never hashed is read once, by its import; one whose stat changed is hashed first (it may be
    // unchanged: touched, copied back), which reads it but spares decoding and lowering on a hit
    const known = this.files.lookup(t.modelPath);
    if (!known.seen) return this.miss();
    const modelSha = known.sha256 ?? this.hashModel(t);
    if (modelSha === undefined) return this.miss();
    const key = this.keyOf(t, precision, modelSha);
    const memo = this.memo.get(key);
    if (memo !== undefined) return this.hit(t, memo, key);
    const file = this.entryFile(key);
    const r: ReadResult & { readonly fd?: number } = this.lazy && this.open.length < MAX_OPEN_ENTRIES ? readEntryLazy(file, key) : readEntry(file, key);
    if (r.fd !== undefined) this.open.push(r.fd);
    if ('rejected' in r) {
      if (r.rejected !== '') this.stats.rejected.push({ tenant: t.id, reason: r.rejected });
      return this.miss();
    }
    const stale = r.entry.deps.find((d) => this.files.hash(d.file) !== d.sha256);
    if (stale !== undefined) return this.miss();
    this.used.add(file);
    touch(file);
    this.memo.set(key, r.entry.tenant);
    return this.hit(t, r.entry.tenant, key);
  }

  // Hooks for importing a tenant that missed: the model's bytes are hashed as they are read (not read twice).
  importHooks(t: TenantSpec): ImportHooks {
    const p: Pending = { external: new Set() };
    this.pending.set(t.id, p);
    const before = statOrNull(t.modelPath);
    return {
      onModelBytes: (bytes) => {
        this.stats.modelsRead++;
        p.modelSha = this.files.remember(t.modelPath, before, sha256Hex(bytes));
      },
      onExternalFile: (file) => p.external.add(file),
    };
  }

  // Writes a freshly lowered tenant. A failed write (disk full, read-only folder) is recorded, not thrown:
  // the compile itself succeeded.
  store(t: TenantSpec, precision: FleetPrecision, tenant: ConcreteTenant): void {
    const p = this.pending.get(t.id);
    this.pending.delete(t.id);
    if (p?.modelSha === undefined) return; // imported without the hooks
    const key = this.keyOf(t, precision, p.modelSha);
    this.memo.set(key, tenant);
    this.keys.set(t.id, key);
    const file = this.entryFile(key);
    try {
      const deps: Dependency[] = [...p.external].sort().map((f) => ({ file: f, sha256: this.files.hash(f) }));
      this.stats.bytesWritten += writeEntry(file, key, deps, tenant);
      this.stats.written++;
      this.used.add(file);
    } catch (e) {
      this.stats.writeErrors.push(`tenant '${t.id}': ${(e as Error).message}`);
    }
  }

  // Closes the entries kept open for their deferred blobs (none of those may be read after this) and removes
  // an early copy no one used.
  close(): void {
    for (const fd of this.open.splice(0)) closeSync(fd);
    if (this.early !== undefined) rmSync(this.early.tmp, { force: true });
    this.early = undefined;
  }

  // Starts copying the weights.bin this fleet's last recorded plan wrote into `outDir` (the kernel copies it on
  // libuv's thread pool while this thread reads the tenants and plans them); previousWeights uses the copy
  // when that file is the one to keep, else it is removed.
  startEarlyCopy(tenantIds: readonly string[], outDir: string): void {
    const file = likelyPreviousWeights(this.dir, tenantIds, this.earlyNotes);
    if (file === undefined) return;
    const tmp = path.join(outDir, `weights.bin.early-${process.pid}`);
    const done = copyFile(file, tmp, fsConstants.COPYFILE_FICLONE).then(
      () => true,
      () => false,
    );
    this.early = { file, tmp, done };
  }

  // The early copy of `file`, once made; undefined when there is none of that file (any other is removed).
  async earlyCopyOf(file: string | undefined): Promise<string | undefined> {
    const early = this.early;
    if (early === undefined) return undefined;
    const ok = await early.done;
    if (ok && early.file === file) {
      this.early = undefined; // writeWeights takes the file over
      return early.tmp;
    }
    rmSync(early.tmp, { force: true });
    this.early = undefined;
    return undefined;
  }

  private readonly earlyNotes: string[] = []; // records startEarlyCopy found corrupt (and deleted)
  private early: { readonly file: string; readonly tmp: string; readonly done: Promise<boolean> } | undefined;

  // Tenant `id` got the same lowered IR as tenant `first` (one model file, dims and maxBatch: src/pipeline.ts).
  sharedWith(id: string, first: string): void {
    const key = this.keys.get(first);
    if (key !== undefined) this.keys.set(id, key);
  }

  // The key of the lowered IR tenant `id` was planned from, when this run knows it.
  tenantKey(id: string): string | undefined {
    return this.keys.get(id);
  }

  // An earlier plan's weights.bin holding most of this plan's blobs (plan-record.ts), or undefined (noted).
  previousWeights(plan: Plan, tenantIds: readonly string[]): PreviousPlan | undefined {
    const blobs = sortedWeightBlobs(plan).map((b) => [b.offset, b.tensor.data.byteLength, this.blobSource(b, tenantIds)] as const);
    const r = findPreviousPlan(this.dir, plan.arenas.weights, blobs);
    const notes = [...this.earlyNotes, ...r.notes];
    this.weights = { passedOver: notes, ...(r.found ? {} : { fullBecause: notes.length > 0 ? 'no recorded plan fits' : 'no earlier plan recorded' }) };
    return r.found;
  }

  // What writeWeights did with previousWeights' answer.
  weightsWritten(reuse: WeightsReuse | undefined, failed: string | undefined): void {
    const passedOver = this.weights?.passedOver ?? [];
    if (reuse !== undefined) this.weights = { reuse, passedOver };
    else if (failed !== undefined) this.weights = { fullBecause: `could not keep the earlier plan's bytes: ${failed}`, passedOver };
  }

  // Records the plan just written for the next compile (plan-record.ts).
  async recordPlan(weightsFile: string, lp: LaunchPlan, plan: Plan, tenantIds: readonly string[]): Promise<void> {
    const sources = sortedWeightBlobs(plan).map((b) => this.blobSource(b, tenantIds));
    const err = await recordPlan(this.dir, weightsFile, lp, sources, tenantIds);
    if (err !== null && this.weights !== undefined) this.weights.recordError = err;
  }

  weights: WeightsNote | undefined;

  private blobSource(b: Plan['weights'][number], tenantIds: readonly string[]): string | null {
    if (b.tenant === undefined || b.seq === undefined) return null;
    const id = tenantIds[b.tenant];
    const key = id === undefined ? undefined : this.keys.get(id);
    return key === undefined ? null : `${key}#${b.seq}`;
  }

  // The plan's typed client, from the cache when these tenants' was rendered before.
  client(tenants: readonly PlannedTenant[], render: () => Promise<string>): Promise<string> {
    return cachedClient(this.dir, tenants, render, (f) => this.used.add(f));
  }

  // Deletes least recently used entries and clients (and stale temporary files) until they fit maxBytes.
  prune(): { removed: number; freedBytes: number; keptBytes: number } {
    const names = [ENTRIES_DIR, CLIENTS_DIR].flatMap((sub) => {
      try {
        return readdirSync(path.join(this.dir, sub)).map((n) => path.join(this.dir, sub, n));
      } catch {
        return [];
      }
    });
    const now = Date.now();
    const all = names.flatMap((file) => {
      try {
        const st = statSync(file);
        return [{ file, size: st.size, mtime: st.mtimeMs, tmp: file.includes('.tmp-') }];
      } catch {
        return []; // removed by another compile meanwhile
      }
    });
    let removed = 0;
    let freedBytes = 0;
    const drop = (f: { file: string; size: number }) => {
      rmSync(f.file, { force: true });
      removed++;
      freedBytes += f.size;
    };
    for (const f of all) if (f.tmp && now - f.mtime > 3600_000) drop(f); // a crashed compile's temporary file
    const entries = all.filter((f) => !f.tmp).sort((a, b) => a.mtime - b.mtime);
    let total = entries.reduce((a, f) => a + f.size, 0);
    for (const f of entries) {
      if (total <= this.maxBytes) break;
      if (this.used.has(f.file)) continue;
      drop(f);
      total -= f.size;
    }
    return { removed, freedBytes, keptBytes: total };
  }

  private keyOf(t: TenantSpec, precision: FleetPrecision, modelSha: string): string {
    const dims = Object.keys(t.dims)
      .sort()
      .map((k) => [k, t.dims[k]]);
    const what = { format: CACHE_FORMAT, loom: loomBuildId(), model: modelSha, dims, maxBatch: t.maxBatch, precision };
    return createHash('sha256').update(JSON.stringify(what)).digest('hex');
  }

  private hashModel(t: TenantSpec): string | undefined {
    this.stats.modelsRead++;
    try {
      return this.files.hash(t.modelPath, 'model file');
    } catch {
      return undefined; // unreadable: the import says why
    }
  }

  private entryFile(key: string): string {
    return path.join(this.dir, ENTRIES_DIR, `${key}${ENTRY_EXT}`);
  }

  private miss(): undefined {
    this.stats.misses++;
    return undefined;
  }

  // The graph is named after the tenant (import names it so; messages use it), the rest is shared.
  private hit(t: TenantSpec, c: ConcreteTenant, key: string): ConcreteTenant {
    this.stats.hits++;
    this.keys.set(t.id, key);
    return { ...c, graph: { ...c.graph, name: t.id } };
  }
}

function sortedWeightBlobs(plan: Plan): Plan['weights'] {
  return [...plan.weights].sort((a, b) => a.offset - b.offset);
}

function touch(file: string): void {
  const now = new Date();
  try {
    utimesSync(file, now, now); // least recently used goes first when pruning
  } catch {
    // another compile pruned it meanwhile: this run holds its data already
  }
}
