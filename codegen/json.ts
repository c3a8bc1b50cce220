// plan.json text: deterministic (keys in a fixed order whatever order the planner built them in), pretty
// where it helps a diff and compact where it doesn't (short arrays and small objects on one line).
// JSON has no Infinity/NaN: those are written as the strings "Infinity", "-Infinity", "NaN" (FORMAT.md).

const FIRST_KEYS = ['format', 'version', 'kind', 'id', 'op', 'name', 'tenant'];
const INLINE_WIDTH = 120;

function keyOrder(a: string, b: string): number {
  const ia = FIRST_KEYS.indexOf(a);
  const ib = FIRST_KEYS.indexOf(b);
  if (ia !== ib) return (ia < 0 ? FIRST_KEYS.length : ia) - (ib < 0 ? FIRST_KEYS.length : ib);
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(a) - Number(b); // launch ids
  return a < b ? -1 : a > b ? 1 : 0;
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return '"NaN"';
  if (v === Infinity) return '"Infinity"';
  if (v === -Infinity) return '"-Infinity"';
  if (Object.is(v, -0)) return '-0';
  return JSON.stringify(v);
}

function compact(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'number':
      return numberText(v);
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map(compact).join(', ')}]`;
      const keys = Object.keys(v as object)
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .sort(keyOrder);
      if (keys.length === 0) return '{}';
      return `{ ${keys.map((k) => `${JSON.stringify(k)}: ${compact((v as Record<string, unknown>)[k])}`).join(', ')} }`;
    }
    default:
      throw new Error(`plan.json cannot hold a ${typeof v}`);
  }
}

// compact(v) when that is at most `max` characters, else undefined, found without building the rest: pretty
// asks this at every level, and building the whole compact text of a 100k-launch plan at each level cost seconds.
function compactWithin(v: unknown, max: number): string | undefined {
  if (v === null || typeof v !== 'object') {
    const s = compact(v);
    return s.length <= max ? s : undefined;
  }
  let out: string;
  if (Array.isArray(v)) {
    out = '[';
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ', ';
      const s = compactWithin(v[i], max - out.length - 1);
      if (s === undefined) return undefined;
      out += s;
    }
    out += ']';
  } else {
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort(keyOrder);
    if (keys.length === 0) out = '{}';
    else {
      out = '{ ';
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) out += ', ';
        out += `${JSON.stringify(keys[i])}: `;
        const s = compactWithin(rec[keys[i]!], max - out.length - 2);
        if (s === undefined) return undefined;
        out += s;
      }
      out += ' }';
    }
  }
  return out.length <= max ? out : undefined;
}

function pretty(v: unknown, indent: string): string {
  if (typeof v !== 'object' || v === null) return compact(v);
  const flat = compactWithin(v, INLINE_WIDTH - indent.length);
  if (flat !== undefined) return flat;
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + pretty(x, inner)).join(',\n')}\n${indent}]`;
  }
  const rec = v as Record<string, unknown>;
  const keys = Object.keys(rec)
    .filter((k) => rec[k] !== undefined)
    .sort(keyOrder);
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${pretty(rec[k], inner)}`).join(',\n')}\n${indent}}`;
}

export function stableJson(v: unknown): string {
  return pretty(v, '') + '\n';
}

const NONFINITE: Readonly<Record<string, number>> = { Infinity: Infinity, '-Infinity': -Infinity, NaN: NaN };
// Fields that hold numbers which may legitimately be non-finite (constants, clip bounds, fill values, costs).
const NUMERIC_KEYS = new Set([
  'v',
  'value',
  'min',
  'max',
  'alpha',
  'beta',
  'epsilon',
  'flops',
  'bytes',
  'predictedUs',
  'ungroupedUs',
  'predictedTickUs',
  'ungroupedTickUs',
  'floorUs',
]);

export function parsePlanJson(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) =>
    typeof value === 'string' && NUMERIC_KEYS.has(key) && Object.hasOwn(NONFINITE, value) ? NONFINITE[value] : value,
  );
}
