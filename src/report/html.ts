// Small printing helpers shared by the report's pieces.
import { type LaunchKindLabel, fmtFlops } from '../fleet/summary.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// JSON inside <script>: nothing in it may close the element or open a comment.
export function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function px(v: number): string {
  return String(Math.round(v * 10) / 10);
}

// Colour per launch kind (also used by the legend and the panels); distinct under common colour blindness.
export const KIND_COLORS: Readonly<Record<LaunchKindLabel, string>> = {
  strided: '#2166ac',
  batched: '#4dac26',
  grouped: '#e66101',
  generated: '#8073ac',
};

export const KIND_TEXT: Readonly<Record<LaunchKindLabel, string>> = {
  strided: 'strided-batched GEMM',
  batched: 'batched GEMM (pointer array)',
  grouped: 'grouped GEMM (shapes differ)',
  generated: 'generated kernel',
};

// "458.8 KFLOP", "320 FLOP"
export function flopText(flops: number): string {
  const s = fmtFlops(flops);
  return /[0-9]$/.test(s) ? `${s} FLOP` : `${s}FLOP`;
}
