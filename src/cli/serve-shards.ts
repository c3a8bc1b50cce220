// `loom serve DIR --devices …`: which device each shard of a `loom compile --shards N` directory runs on, and
// loading them (one LoadedPlan, so one tick loop, per shard).
import os from 'node:os';
import path from 'node:path';
import { fail } from '../../ir/errors.js';
import { type LoadedPlan, chooseBackend, loadPlan, nativeAddonInfo } from '../../runtime/index.js';
import type { ServeShard } from '../../runtime/serve/index.js';
import { isShardsDir, readShardsFile } from '../fleet/shards-file.js';

export const DEVICES_HELP = [
  'Shards (a directory written by `loom compile --shards N`): shard k runs on the k-th entry of --devices, one tick loop each,',
  'behind this one HTTP/gRPC front end; /metrics adds loom_shard_* families labelled by shard and device.',
  '  --devices 0,1          shard 0 on GPU 0, shard 1 on GPU 1 (CUDA backend)',
  '  --devices 0,0          both shards on GPU 0 (two plans, two tick loops, one device)',
  '  --devices cpu,cpu      both on the CPU backend (--threads per shard; default: the cores split between them)',
  '  default: GPUs 0..N-1 where the CUDA backend is built and enough GPUs are visible (--backend auto|cuda), else cpu for every shard',
  '  a plain plan directory takes one entry: --devices 1 serves it on GPU 1',
];

export interface DeviceSpec {
  readonly backend: 'cpu' | 'cuda';
  readonly gpu: number | null; // cuda only
  readonly label: string; // 'cpu' or 'cuda:<n>' (the /metrics device label)
}

// "0,1" | "cuda:0,cuda:1" | "cpu,cpu" | a mix; `count` entries.
export function parseDevices(spec: string, count: number): DeviceSpec[] {
  const parts = spec.split(',').map((s) => s.trim());
  if (parts.length !== count)
    fail(
      'USAGE',
      `--devices '${spec}' names ${parts.length} device${parts.length === 1 ? '' : 's'}, but there ${count === 1 ? 'is 1 plan' : `are ${count} shards`}; give one entry per shard, in shard order`,
    );
  return parts.map((p) => {
    if (p === 'cpu') return { backend: 'cpu', gpu: null, label: 'cpu' };
    const m = /^(?:cuda:)?(\d{1,3})$/.exec(p);
    if (!m) fail('USAGE', `--devices: '${p}' is not a device; write a GPU index (0, 1, … or cuda:0) or cpu`);
    return { backend: 'cuda', gpu: Number(m[1]), label: `cuda:${Number(m[1])}` };
  });
}

function defaultDevices(count: number, backend: 'auto' | 'cpu' | 'cuda'): DeviceSpec[] {
  const info = nativeAddonInfo();
  const chosen = chooseBackend(backend, info.backends, info.cudaDevices);
  if (chosen === 'cpu') return Array.from({ length: count }, () => ({ backend: 'cpu', gpu: null, label: 'cpu' }));
  const gpus = info.cudaDevices ?? 0;
  if (gpus < count)
    fail(
      'USAGE',
      `${count} shards but ${gpus} GPU${gpus === 1 ? '' : 's'} visible: say where each shard runs, e.g. --devices ${Array.from({ length: count }, (_, k) => k % Math.max(1, gpus)).join(',')}`,
    );
  return Array.from({ length: count }, (_, k) => ({ backend: 'cuda', gpu: k, label: `cuda:${k}` }));
}

export interface LoadedFront {
  readonly shards: readonly ServeShard[] | null; // null: a plain plan directory
  readonly single: LoadedPlan | null;
  readonly tenants: readonly string[];
  close(): void;
}

export async function loadServed(
  dir: string,
  o: { readonly devices?: string; readonly backend: 'auto' | 'cpu' | 'cuda'; readonly threads?: number },
): Promise<LoadedFront> {
  if (!isShardsDir(dir)) {
    const dev = o.devices === undefined ? null : parseDevices(o.devices, 1)[0]!;
    if (dev !== null && o.backend !== 'auto' && o.backend !== dev.backend) fail('USAGE', `--backend ${o.backend} contradicts --devices ${o.devices}`);
    const single = await loadPlan(dir, {
      backend: dev?.backend ?? o.backend,
      ...(dev?.gpu != null ? { device: dev.gpu } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
    });
    return { shards: null, single, tenants: single.plan.tenants.map((t) => t.id), close: () => single.close() };
  }
  const file = readShardsFile(dir);
  const n = file.shards.length;
  const devices = o.devices === undefined ? defaultDevices(n, o.backend) : parseDevices(o.devices, n);
  for (const d of devices) if (o.backend !== 'auto' && d.backend !== o.backend) fail('USAGE', `--backend ${o.backend} contradicts --devices ${o.devices}`);
  const cpuShards = devices.filter((d) => d.backend === 'cpu').length;
  const threads = o.threads ?? Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, cpuShards)));
  const loaded: ServeShard[] = [];
  try {
    for (const [k, s] of file.shards.entries()) {
      const d = devices[k]!;
      const runner = await loadPlan(path.join(dir, s.dir), {
        backend: d.backend,
        ...(d.gpu !== null ? { device: d.gpu } : { threads }),
      });
      const want = [...s.tenants].sort().join(',');
      if ([...runner.plan.tenants.map((t) => t.id)].sort().join(',') !== want) {
        runner.close();
        fail(
          'PLAN_INVALID',
          `'${path.join(dir, s.dir)}' serves other tenants than shards.json lists for shard ${k} (${s.tenants.join(', ')}); recompile with --shards`,
        );
      }
      loaded.push({ id: s.id, device: d.label, runner });
    }
  } catch (e) {
    for (const s of loaded) s.runner.close?.();
    throw e;
  }
  return {
    shards: loaded,
    single: null,
    tenants: loaded.flatMap((s) => s.runner.plan.tenants.map((t) => t.id)),
    close: () => loaded.forEach((s) => s.runner.close?.()),
  };
}
