// Writes native/src/plan_enums.gen.h from the LaunchPlan contract's closed name lists (ir/contract/launch.ts,
// ir/dtype.ts), so the native side never repeats them by hand: one C++ enum class per list, in the list's
// order, with a name table, a parser and the "a, b or c" text its error messages use.
// The committed header is the build input (the GPU machine and CI build without tsx);
// test/native/contract-gen.test.ts regenerates it in memory and fails when the two differ.
// usage: npm run gen:native   (= npx tsx tools/gen-native-contract.ts [--check])
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DTYPES } from '../ir/dtype.js';
import {
  ACTIVATION_KINDS,
  ARENA_IDS,
  ELT_BINARY,
  ELT_MAX_PARAMS,
  ELT_OPERAND_OPS,
  ELT_UNARY,
  GEMM_BIAS_MODES,
  GEMM_DTYPES,
  KERNEL_OPS,
  LAUNCH_KINDS,
  POOL_GEOMETRY_FIELDS,
  POOL_MODES,
  REDUCE_KINDS,
  SE_MAX_CHANNELS,
  SE_MAX_HIDDEN,
} from '../ir/contract/launch.js';

export const NATIVE_CONTRACT_HEADER = 'native/src/plan_enums.gen.h';

interface EnumSpec {
  readonly cpp: string; // the C++ enum's name (plan.h has always used these)
  readonly source: string; // the contract list it comes from, for the comment
  readonly names: readonly string[]; // contract spellings, in order
  // Enumerators before the contract's names that have no spelling in plan.json (activation_kind::none:
  // a GEMM without activation is `activation: null` in JSON). They are named but never parsed.
  readonly leading?: readonly string[];
  // Contract names that cannot be C++ enumerators (keywords, or the names plan.h has always used).
  readonly rename?: Readonly<Record<string, string>>;
}

const ENUMS: readonly EnumSpec[] = [
  { cpp: 'arena_id', source: 'ARENA_IDS', names: ARENA_IDS },
  { cpp: 'dtype', source: 'DTYPES (ir/dtype.ts)', names: DTYPES, rename: { bool: 'boolean' } },
  { cpp: 'launch_kind', source: 'LAUNCH_KINDS', names: LAUNCH_KINDS },
  { cpp: 'bias_mode', source: 'GEMM_BIAS_MODES', names: GEMM_BIAS_MODES },
  { cpp: 'activation_kind', source: 'ACTIVATION_KINDS', names: ACTIVATION_KINDS, leading: ['none'] },
  {
    cpp: 'elt_op',
    source: 'ELT_OPERAND_OPS, ELT_UNARY, ELT_BINARY',
    names: [...ELT_OPERAND_OPS, ...ELT_UNARY, ...ELT_BINARY],
    rename: { const: 'constant', not: 'logical_not', and: 'logical_and', or: 'logical_or', xor: 'logical_xor' },
  },
  { cpp: 'kernel_kind', source: 'KERNEL_OPS', names: KERNEL_OPS },
  { cpp: 'reduce_kind', source: 'REDUCE_KINDS', names: REDUCE_KINDS },
  { cpp: 'pool_mode', source: 'POOL_MODES', names: POOL_MODES },
];

// C++17 keywords and alternative tokens: a contract name among them needs an entry in its rename table.
const CPP_RESERVED = new Set(
  (
    'alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class compl const constexpr ' +
    'const_cast continue decltype default delete do double dynamic_cast else enum explicit export extern false float for friend ' +
    'goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public register ' +
    'reinterpret_cast return short signed sizeof static static_assert static_cast struct switch template this thread_local throw ' +
    'true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq'
  ).split(' '),
);

function enumerators(e: EnumSpec): string[] {
  const out = [...(e.leading ?? []), ...e.names.map((n) => e.rename?.[n] ?? n)];
  for (const id of out) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(id) || CPP_RESERVED.has(id)) {
      throw new Error(`${e.cpp}: '${id}' is not a usable C++ enumerator; add it to the rename table in tools/gen-native-contract.ts`);
    }
  }
  if (new Set(out).size !== out.length) throw new Error(`${e.cpp}: duplicate enumerators`);
  return out;
}

// "a, b or c": how the messages of addon_plan.cc and plan_validate.cc list the allowed values.
export function expectedText(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

const quote = (s: string): string => JSON.stringify(s);

// Wraps a comma-separated list at ~110 columns with the given indent.
function wrap(items: readonly string[], indent: string): string {
  const lines: string[] = [];
  let cur = '';
  for (const it of items) {
    const piece = cur ? `${cur} ${it},` : `${it},`;
    if (indent.length + piece.length > 118 && cur) {
      lines.push(indent + cur);
      cur = `${it},`;
    } else cur = piece;
  }
  if (cur) lines.push(indent + cur);
  return lines.join('\n');
}

function enumBlock(e: EnumSpec): string {
  const ids = enumerators(e);
  const lead = e.leading?.length ?? 0;
  const all = [...(e.leading ?? []), ...e.names];
  const n = e.cpp;
  return [
    `// ${e.source}${lead ? ` (after ${e.leading!.join(', ')}, which plan.json never spells)` : ''}`,
    `enum class ${n} : uint8_t {`,
    wrap(ids, '  '),
    `};`,
    `inline constexpr size_t ${n}_count = ${ids.length};`,
    `inline constexpr const char* ${n}_names[${n}_count] = {`,
    wrap(all.map(quote), '    '),
    `};`,
    `static_assert(static_cast<size_t>(${n}::${ids[ids.length - 1]}) + 1 == ${n}_count, "${n}: enumerators and names disagree");`,
    `inline const char* ${n}_name(${n} v) { return contract_detail::name_of(${n}_names, static_cast<size_t>(v)); }`,
    `inline bool ${n}_parse(const std::string& s, ${n}& out) { return contract_detail::parse(${n}_names, ${lead}, s, out); }`,
    `inline const char* ${n}_expected() { return ${quote(expectedText(e.names))}; }`,
    '',
  ].join('\n');
}

export function nativeContractHeader(): string {
  const elt = ENUMS.find((e) => e.cpp === 'elt_op')!;
  const eltIds = enumerators(elt);
  const firstUnary = eltIds[ELT_OPERAND_OPS.length]!;
  const firstBinary = eltIds[ELT_OPERAND_OPS.length + ELT_UNARY.length]!;
  const dtypeSpec = ENUMS.find((e) => e.cpp === 'dtype')!;
  const dtypeId = (d: string): string => dtypeSpec.rename?.[d] ?? d;
  const geomFields = POOL_GEOMETRY_FIELDS;
  return [
    '// generated by tools/gen-native-contract.ts from ir/contract/launch.ts — do not edit',
    '// (and from ir/dtype.ts DTYPES). Regenerate with `npm run gen:native`; test/native/contract-gen.test.ts',
    '// fails when this file and the contract disagree. Included by plan.h.',
    '#pragma once',
    '',
    '#include <cstddef>',
    '#include <cstdint>',
    '#include <string>',
    '',
    'namespace loom {',
    '',
    'namespace contract_detail {',
    '',
    'template <size_t N>',
    'inline const char* name_of(const char* const (&names)[N], size_t i) { return i < N ? names[i] : "?"; }',
    '',
    '// Names before `first` are not spelled in plan.json (e.g. activation_kind::none) and never parse.',
    'template <typename E, size_t N>',
    'inline bool parse(const char* const (&names)[N], size_t first, const std::string& s, E& out) {',
    '  for (size_t i = first; i < N; i++) {',
    '    if (s == names[i]) {',
    '      out = static_cast<E>(i);',
    '      return true;',
    '    }',
    '  }',
    '  return false;',
    '}',
    '',
    '} // namespace contract_detail',
    '',
    ...ENUMS.map(enumBlock),
    '// elt_op lists the operand instructions, then the unary ones, then the binary ones (the contract keeps',
    "// that order), so an instruction's stack effect is a range check.",
    `constexpr bool elt_op_is_unary(elt_op o) { return o >= elt_op::${firstUnary} && o < elt_op::${firstBinary}; }`,
    `constexpr bool elt_op_is_binary(elt_op o) { return o >= elt_op::${firstBinary}; }`,
    "// ELT_MAX_PARAMS: the most per-segment constants (an eltwise segment's params) a segment carries.",
    `inline constexpr size_t elt_max_params = ${ELT_MAX_PARAMS};`,
    "// SE_MAX_CHANNELS / SE_MAX_HIDDEN: a squeeze_excite segment's most channels and hidden values (shared memory).",
    `inline constexpr int64_t se_max_channels = ${SE_MAX_CHANNELS};`,
    `inline constexpr int64_t se_max_hidden = ${SE_MAX_HIDDEN};`,
    '',
    '// GEMM_DTYPES: the dtypes a gemm / gemm_grouped launch may have (its A and B; C and bias are f32).',
    `inline constexpr dtype gemm_dtypes[] = {${GEMM_DTYPES.map((d) => `dtype::${dtypeId(d)}`).join(', ')}};`,
    'constexpr bool dtype_is_gemm_operand(dtype d) {',
    `  return ${GEMM_DTYPES.map((d) => `d == dtype::${dtypeId(d)}`).join(' || ')};`,
    '}',
    `inline const char* gemm_dtype_expected() { return ${quote(expectedText(GEMM_DTYPES))}; }`,
    '',
    "// POOL_GEOMETRY_FIELDS: a segment's geom, in the order of the segment table's geom[16] (codegen/FORMAT.md).",
    `inline constexpr size_t pool_geometry_field_count = ${geomFields.length};`,
    'inline constexpr const char* pool_geometry_field_names[pool_geometry_field_count] = {',
    wrap(geomFields.map(quote), '    '),
    '};',
    '',
    '} // namespace loom',
    '',
  ].join('\n');
}

function main(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const file = path.join(root, NATIVE_CONTRACT_HEADER);
  const text = nativeContractHeader();
  if (process.argv.includes('--check')) {
    const same = readFileSync(file, 'utf8') === text;
    process.stdout.write(same ? `${NATIVE_CONTRACT_HEADER} is up to date\n` : `${NATIVE_CONTRACT_HEADER} is stale: run npm run gen:native\n`);
    process.exit(same ? 0 : 1);
  }
  writeFileSync(file, text);
  process.stdout.write(`wrote ${NATIVE_CONTRACT_HEADER}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
