// A small block-style YAML writer for the manifests `loom deploy k8s` writes: plain objects, arrays, strings,
// numbers and booleans. Every string is double-quoted (JSON's escapes are YAML's), so no value is ever read
// back as another type ("1", "true", "0x10" stay strings).
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [k: string]: YamlValue | undefined };

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
const key = (k: string) => (PLAIN_KEY.test(k) ? k : JSON.stringify(k));

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`yaml: ${v} is not a finite number`);
    return String(v);
  }
  return typeof v === 'boolean' ? String(v) : JSON.stringify(v);
}

const isScalar = (v: YamlValue): v is string | number | boolean | null => v === null || typeof v !== 'object';
const isEmpty = (v: YamlValue) => !isScalar(v) && (Array.isArray(v) ? v.length === 0 : Object.keys(v).length === 0);

function lines(v: YamlValue, indent: string): string[] {
  if (Array.isArray(v)) {
    return v.flatMap((item: YamlValue) => {
      if (isScalar(item) || isEmpty(item)) return [`${indent}- ${isScalar(item) ? scalar(item) : Array.isArray(item) ? '[]' : '{}'}`];
      const inner = lines(item, `${indent}  `);
      return [`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1)];
    });
  }
  const out: string[] = [];
  for (const [k, item] of Object.entries(v as Record<string, YamlValue | undefined>)) {
    if (item === undefined) continue;
    if (isScalar(item)) out.push(`${indent}${key(k)}: ${scalar(item)}`);
    else if (isEmpty(item)) out.push(`${indent}${key(k)}: ${Array.isArray(item) ? '[]' : '{}'}`);
    else out.push(`${indent}${key(k)}:`, ...lines(item, Array.isArray(item) ? indent : `${indent}  `));
  }
  return out;
}

// Documents separated by `---`, each preceded by its comment lines.
export function toYamlDocuments(docs: readonly { readonly comment?: string; readonly value: YamlValue }[]): string {
  return docs
    .map((d) => [...(d.comment ? d.comment.split('\n').map((c) => `# ${c}`) : []), ...lines(d.value, '')].join('\n'))
    .map((d, i) => (i === 0 ? d : `---\n${d}`))
    .join('\n')
    .concat('\n');
}
