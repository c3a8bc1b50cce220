// The worker thread of renderClientInWorker (codegen/client.ts): renders the typed client from the tenants it
// was given and posts the text back ({ text } or { error }).
import { parentPort, workerData } from 'node:worker_threads';
import type { PlannedTenant } from '../ir/contract/plan.js';
import { isLoomError } from '../ir/errors.js';
import { type ClientOptions, renderClient } from './client.js';

const data = workerData as { tenants: readonly PlannedTenant[]; opts: ClientOptions };
renderClient(data.tenants, data.opts).then(
  (text) => parentPort?.postMessage({ text }),
  (e: unknown) => parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e), ...(isLoomError(e) ? { code: e.code } : {}) }),
);
