// The one place templates are rendered (handlebars). Templates only print what codegen/kernels.ts decided:
// no helpers, no logic beyond {{#each}}. CUDA is not HTML, so nothing is escaped; `strict` makes an unknown
// name an error, so a template typo cannot print an empty string into CUDA.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';

export type TemplateData = { readonly [k: string]: TemplateValue };
export type TemplateValue = string | number | boolean | TemplateData | readonly TemplateValue[];

// Templates live in codegen/templates/ next to the sources; from dist/codegen/ they are found in the
// source tree (tsc does not copy them).
function templateDir(): string {
  const here = import.meta.dirname;
  for (const dir of [path.join(here, 'templates'), path.resolve(here, '../../codegen/templates')]) if (existsSync(dir)) return dir;
  throw new Error(`codegen templates not found next to ${here}`);
}

const cache = new Map<string, HandlebarsTemplateDelegate>();

export function renderTemplate(name: string, data: TemplateData): string {
  let template = cache.get(name);
  if (template === undefined) {
    const text = readFileSync(path.join(templateDir(), name), 'utf8');
    template = Handlebars.compile(text, { noEscape: true, strict: true });
    cache.set(name, template);
  }
  return template(data);
}
