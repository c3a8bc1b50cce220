// Constants whose bytes are not read yet. A tenant read back from the tenant cache (src/cache/entry.ts) may
// leave its large constants on disk: the planner lays most weights out as they are (it needs their dtype,
// shape and size, not their bytes), and a recompile keeps the previous plan's weights.bin bytes for unchanged
// tenants (src/cache/plan-record.ts), so those bytes are often never needed at all.
//
// Such a constant's `data` is a zero-filled array of the right length standing in for the bytes, with the
// source registered here. The bytes are never guessed:
// - the graph's `constants` map is a TrackedConstants: every get (or iteration) that hands out a deferred
//   constant records it as touched, except placeConstant, the planner's one read that only lays the
//   constant out as a weight (src/planner/lower-context.ts loc). A plan made while a deferred constant was
//   touched is thrown away: the caller loads those constants (materialize) and plans again, until a plan
//   touched none (src/pipeline.ts PLAN);
// - whoever writes a weight's bytes asks bytesOf, which reads a deferred constant's bytes from its source.
import type { Graph, ValueId } from './graph.js';
import type { AnyTypedArray } from './dtype.js';
import type { Tensor } from './tensor.js';

// A deferred constant's bytes could not be read back as recorded (the file is gone, short or corrupt): the
// compile that deferred it starts again reading every constant whole (src/fleet/compile.ts).
export class DeferredReadError extends Error {
  override readonly name = 'DeferredReadError';
}

export interface DeferredSource {
  readonly what: string; // for errors: the file and place
  readonly read: () => Uint8Array; // the bytes, checked (throws when they are not what was recorded)
}

const sources = new WeakMap<AnyTypedArray, DeferredSource>(); // by the stand-in data array
const touched = new Set<Tensor>();

export function defer(data: AnyTypedArray, source: DeferredSource): void {
  sources.set(data, source);
}

export function isDeferred(t: Tensor): boolean {
  return sources.has(t.data);
}

// The constants of a graph with deferred ones: hands them out like a Map, noting the deferred ones it hands out.
export class TrackedConstants extends Map<ValueId, Tensor> {
  override get(v: ValueId): Tensor | undefined {
    const t = super.get(v);
    if (t !== undefined && sources.has(t.data)) touched.add(t);
    return t;
  }

  peek(v: ValueId): Tensor | undefined {
    return super.get(v);
  }

  override forEach(fn: (t: Tensor, v: ValueId, m: Map<ValueId, Tensor>) => void, self?: unknown): void {
    this.touchAll();
    super.forEach(fn, self);
  }

  override entries(): MapIterator<[ValueId, Tensor]> {
    this.touchAll();
    return super.entries();
  }

  override values(): MapIterator<Tensor> {
    this.touchAll();
    return super.values();
  }

  override [Symbol.iterator](): MapIterator<[ValueId, Tensor]> {
    this.touchAll();
    return super.entries();
  }

  private touchAll(): void {
    for (const t of super.values()) if (sources.has(t.data)) touched.add(t);
  }
}

// The constant at v, for laying it out as a weight without reading its bytes.
export function placeConstant(g: Graph, v: ValueId): Tensor | undefined {
  const m = g.constants;
  return m instanceof TrackedConstants ? m.peek(v) : m.get(v);
}

// The deferred constants handed out since the last call (and forgets them).
export function takeTouched(): Tensor[] {
  const out = [...touched].filter((t) => sources.has(t.data));
  touched.clear();
  return out;
}

// Reads a deferred constant's bytes into its data: from now on it is an ordinary constant.
export function materialize(t: Tensor): void {
  const src = sources.get(t.data);
  if (src === undefined) return;
  const bytes = src.read();
  const d = t.data;
  if (bytes.byteLength !== d.byteLength) throw new Error(`${src.what}: ${bytes.byteLength} bytes, the constant has ${d.byteLength}`);
  new Uint8Array(d.buffer, d.byteOffset, d.byteLength).set(bytes);
  sources.delete(t.data);
}

// A tensor's bytes as stored: its data, or a deferred constant's bytes read from their source.
export function bytesOf(t: Tensor): Uint8Array {
  const src = sources.get(t.data);
  if (src !== undefined) {
    const bytes = src.read();
    if (bytes.byteLength !== t.data.byteLength) throw new Error(`${src.what}: ${bytes.byteLength} bytes, the constant has ${t.data.byteLength}`);
    return bytes;
  }
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}
