// src/report: `loom inspect --html`, a self-contained page with the plan's space-time chart and summary
// panels. model.ts decides what is shown; chart/panels/page print it.
import { writeFileSync } from 'node:fs';
import { fail } from '../../ir/errors.js';
import type { BenchTimes } from './bench.js';
import { type ReportModel, type ReportModelOptions, type ReportPlan, buildReportModel } from './model.js';
import { renderPage } from './page.js';

export { parseBench, readBenchFile } from './bench.js';
export type { BenchTimes } from './bench.js';
export { buildReportModel } from './model.js';
export type { ReportBlock, ReportGrouping, ReportModel, ReportModelOptions, ReportPlan, ReportStage, ReportTenant } from './model.js';
export { CHART_TENANT_ROWS, MAX_GROUP_ROWS, groupTenants } from './groups.js';
export type { GroupedPlan, TenantGroup } from './groups.js';
export { orderTenants, countBreaks } from './order.js';

export interface ReportOptions {
  readonly bench?: BenchTimes; // measured launch times: widths by measured time
  readonly title?: string;
  readonly maxTenantRows?: number; // more tenants than this: the chart draws tenant groups (default 200)
}

function modelOptions(opts: ReportOptions): ReportModelOptions {
  return opts.maxTenantRows !== undefined ? { maxTenantRows: opts.maxTenantRows } : {};
}

export function renderReport(plan: ReportPlan, opts: ReportOptions = {}): string {
  return renderPage(buildReportModel(plan, opts.bench, modelOptions(opts)), opts.title !== undefined ? { title: opts.title } : {});
}

export function writeReport(plan: ReportPlan, file: string, opts: ReportOptions = {}): ReportModel {
  const model = buildReportModel(plan, opts.bench, modelOptions(opts));
  try {
    writeFileSync(file, renderPage(model, opts.title !== undefined ? { title: opts.title } : {}));
  } catch (e) {
    fail('IO', `cannot write report '${file}': ${(e as Error).message}`);
  }
  return model;
}
