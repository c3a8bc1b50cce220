// Constants whose bytes are not read yet. A tenant read back from the tenant cache (src/cache/entry.ts) may
// leave its large constants on disk: the planner lays most weights out as they are (it needs their dtype,
// shape and size, not their bytes), and a recompile keeps the previous plan's weights.bin bytes for unchanged
// tenants (src/cache/plan-record.ts), so those bytes are often never needed at all.
//
// Such a constant's `data` is a stand-in of the right length (a view of one shared zero buffer, so standing in
// costs no memory), with the source registered here. The bytes are never guessed:
// - the graph's `constants` map is a TrackedConstants: every get (or iteration) that hands out a deferred
//   constant records it as touched, except placeConstant, the planner's one read that only lays the
//   constant out as a weight (src/planner/lower-context.ts loc). A plan made while a deferred constant was
//   touched is thrown away: the caller loads those constants (loadTouched: each map then holds a real
//   tensor in its place) and plans again, until a plan touched none (src/pipeline.ts PLAN);
// - whoever writes a weight's bytes asks bytesOf, which reads a deferred constant's bytes from its source.
import type { Graph, ValueId } from './graph.js';
import { type AnyTypedArray, type DType, byteSize, viewArray } from './dtype.js';
import { type Tensor, makeTensor } from './tensor.js';

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
const touched = new Map<Tensor, Set<readonly [TrackedConstants, ValueId]>>(); // where each was handed out
const loaded = new WeakMap<Tensor, Tensor>(); // stand-in → the real tensor once its bytes were read
let zeros = new ArrayBuffer(0);

// A stand-in for n elements of dtype d (all zeros; never to be written), for `source`'s bytes.
export function standIn(d: DType, n: number, source: DeferredSource): AnyTypedArray {
  const bytes = n * byteSize(d);
  if (zeros.byteLength < bytes) zeros = new ArrayBuffer(bytes);
  const data = viewArray(d, zeros, 0, n);
  sources.set(data, source);
  return data;
}

export function isDeferred(t: Tensor): boolean {
  return sources.has(t.data);
}

// The constants of a graph with deferred ones: hands them out like a Map, noting the deferred ones it hands out.
export class TrackedConstants extends Map<ValueId, Tensor> {
  override get(v: ValueId): Tensor | undefined {
    const t = super.get(v);
    if (t !== undefined && sources.has(t.data)) touch(t, this, v);
    return t;
  }

  // Puts the real tensor where its stand-in was (loadTouched).
  replace(v: ValueId, t: Tensor): void {
    super.set(v, t);
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
    for (const [v, t] of super.entries()) if (sources.has(t.data)) touch(t, this, v);
  }
}

// The constant at v, for laying it out as a weight without reading its bytes.
export function placeConstant(g: Graph, v: ValueId): Tensor | undefined {
  const m = g.constants;
  return m instanceof TrackedConstants ? m.peek(v) : m.get(v);
}

function touch(t: Tensor, m: TrackedConstants, v: ValueId): void {
  let at = touched.get(t);
  if (at === undefined) touched.set(t, (at = new Set()));
  at.add([m, v]);
}

// Forgets what was handed out so far (before a plan whose touches are to be counted).
export function forgetTouched(): void {
  touched.clear();
}

// Reads the bytes of every deferred constant handed out since the last call and puts a real tensor in its
// place in each map that handed it out; returns how many it loaded.
export function loadTouched(): number {
  const list = [...touched];
  touched.clear();
  for (const [t, at] of list) {
    let real = loaded.get(t);
    if (real === undefined) {
      real = makeTensor(t.dtype, t.shape, copyOf(t.dtype, bytesOf(t)));
      loaded.set(t, real);
    }
    for (const [m, v] of at) m.replace(v, real);
  }
  return list.length;
}

function copyOf(d: DType, bytes: Uint8Array): AnyTypedArray {
  const buf = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buf).set(bytes);
  return viewArray(d, buf, 0, bytes.byteLength / byteSize(d));
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
