#!/usr/bin/env node
// Import direction check (`npm run lint` runs it; CI fails on it). A TypeScript/JavaScript file may import
// only from its own layer or a lower one:
//   ir/ → src/onnx/ → src/planner/ → codegen/ → runtime/ → app (the rest of src/: cli, fleet, measure,
//   report; models/) → top (bin/, tools/, bench/, test/)
// and two more rules: codegen/ and runtime/ import nothing from src/ (they read and run the LaunchPlan,
// whose contract sits in ir/contract/), and no TypeScript imports a path under native/ (the addon is loaded
// at run time by runtime/native-addon.ts from its build output; the C++ side reads the plan, not our code).
// Imports are read with TypeScript's own pre-processor (static, `export … from`, `import()` and
// `require()`), so comments and strings are not mistaken for imports. Only relative specifiers can cross
// layers; packages and node: builtins are skipped.
// usage: node tools/check-layers.mjs [root]   prints each backward import as file:line and exits 1, or
//        prints one summary line and exits 0.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const LAYERS = [
  // [path prefix, rank, name]; the longest matching prefix wins
  ['ir/', 0, 'ir'],
  ['src/onnx/', 1, 'src/onnx'],
  ['src/planner/', 2, 'src/planner'],
  ['codegen/', 3, 'codegen'],
  ['runtime/', 4, 'runtime'],
  ['src/', 5, 'app'],
  ['models/', 5, 'app'],
  ['bin/', 6, 'top'],
  ['tools/', 6, 'top'],
  ['bench/', 6, 'top'],
  ['test/', 6, 'top'],
];
const SCANNED = ['ir', 'src', 'codegen', 'runtime', 'models', 'bin', 'tools', 'bench', 'test'];
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', '.git', '.tmp', 'results', '__snapshots__']);
const SOURCE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;

/** The layer of a repository-relative path (forward slashes), or null for files outside every layer. */
export function layerOf(rel) {
  let best = null;
  for (const [prefix, rank, name] of LAYERS) {
    if (rel.startsWith(prefix) && (!best || prefix.length > best.prefix.length)) best = { prefix, rank, name };
  }
  return best;
}

function walk(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...walk(p));
    } else if (e.isFile() && SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) {
      out.push(p);
    }
  }
  return out;
}

/** Why an import of `target` from a file of layer `from` points the wrong way, or null when it does not. */
function backward(target, from, to) {
  if (target === 'native' || target.startsWith('native/')) {
    return 'TypeScript does not import native/ (the addon is loaded at run time by runtime/native-addon.ts)';
  }
  if (!to) return null;
  if (to.rank > from.rank) return `${from.name} may not import the later layer ${to.name}`;
  if ((from.name === 'codegen' || from.name === 'runtime') && target.startsWith('src/')) return `${from.name} imports nothing from src/`;
  return null;
}

/** Every backward import under `root`, as { file, line, message }, plus counts for the summary. */
export function checkLayers(root) {
  const files = SCANNED.filter((d) => fs.existsSync(path.join(root, d))).flatMap((d) => walk(path.join(root, d)));
  const problems = [];
  let edges = 0;
  for (const file of files) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const from = layerOf(rel);
    if (!from) continue;
    const text = fs.readFileSync(file, 'utf8');
    const { importedFiles } = ts.preProcessFile(text, true, true);
    for (const imp of importedFiles) {
      if (!imp.fileName.startsWith('.')) continue;
      const target = path
        .relative(root, path.resolve(path.dirname(file), imp.fileName))
        .split(path.sep)
        .join('/');
      if (target.startsWith('..')) continue;
      edges++;
      const line = text.slice(0, imp.pos).split('\n').length;
      const to = layerOf(target);
      const why = backward(target, from, to);
      if (why) problems.push({ file: rel, line, message: `imports ${target}: ${why}` });
    }
  }
  return { files: files.length, edges, problems };
}

const self = fileURLToPath(import.meta.url);
const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === self;
if (isMain) {
  const root = path.resolve(process.argv[2] ?? path.join(path.dirname(self), '..'));
  const { files, edges, problems } = checkLayers(root);
  for (const p of problems) console.log(`${p.file}:${p.line}: ${p.message}`);
  if (problems.length) {
    console.log(`layers: ${problems.length} backward import(s) (ir → src/onnx → src/planner → codegen → runtime → app → bin/tools/bench/test)`);
    process.exit(1);
  }
  console.log(
    `layers: ${files} files, ${edges} relative imports, none backward (ir → src/onnx → src/planner → codegen → runtime → app → bin/tools/bench/test)`,
  );
}
