import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail } from '../ir/errors.js';
import type { ZooModel } from './zoo/graph.js';
import { encoder } from './zoo/encoder.js';
import { mlp } from './zoo/mlp.js';
import { mobilenet } from './zoo/mobilenet.js';
import { gru, lstm } from './zoo/rnn.js';
import { resnet18 } from './zoo/resnet.js';
import { squeezenet } from './zoo/squeezenet.js';

export type { CommonOptions, ZooModel } from './zoo/graph.js';
export type { EncoderOptions } from './zoo/encoder.js';
export type { MlpOptions } from './zoo/mlp.js';
export type { MobileNetOptions } from './zoo/mobilenet.js';
export type { RnnOptions } from './zoo/rnn.js';
export type { ResNetOptions } from './zoo/resnet.js';
export type { SqueezeNetOptions } from './zoo/squeezenet.js';
export { Rng } from './random.js';
export { encoder, gru, lstm, mlp, mobilenet, resnet18, squeezenet };

export interface ZooEntry<O> {
  readonly generate: (opts: O) => ZooModel;
  readonly summary: string;
}

function entry<O>(generate: (opts: O) => ZooModel, summary: string): ZooEntry<O> {
  return { generate, summary };
}

// Every seeded generator; fleets name a kind from here plus options (seed at least).
export const ZOO = {
  mlp: entry(mlp, 'MLP 784-512-512-10, Erf-GELU (or ReLU), Gemm transB=1 or MatMul+Add'),
  lstm: entry(lstm, 'ONNX LSTM (hidden 256, input 128, 8 steps) + Gemm head on the last Y_h'),
  gru: entry(gru, 'ONNX GRU, linear_before_reset=1 (hidden 256, input 128, 8 steps) + Gemm head on the last Y_h'),
  resnet18: entry(resnet18, 'ResNet-18 at 224x224, unfolded Conv + BatchNormalization, 1000 classes'),
  encoder: entry(encoder, 'BERT-style encoder: 4 layers, hidden 256, 4 heads, FFN 1024, seq 64, HF-style mask and shape sub-graphs'),
  mobilenet: entry(mobilenet, 'MobileNetV3-Small: depthwise convs, HardSwish, squeeze-excitation with HardSigmoid'),
  squeezenet: entry(squeezenet, 'SqueezeNet 1.1: fire modules with Concat, MaxPool ceil_mode=1'),
} as const;

export type ZooKind = keyof typeof ZOO;
export type ZooOptions<K extends ZooKind> = Parameters<(typeof ZOO)[K]['generate']>[0];

export const ZOO_KINDS = Object.keys(ZOO) as ZooKind[];

export function isZooKind(s: string): s is ZooKind {
  return Object.hasOwn(ZOO, s);
}

export function generateModel<K extends ZooKind>(kind: K, opts: ZooOptions<K>): ZooModel {
  if (!isZooKind(kind)) fail('USAGE', `model zoo: unknown kind '${String(kind)}' (known: ${ZOO_KINDS.join(', ')})`);
  return (ZOO[kind].generate as (o: ZooOptions<K>) => ZooModel)(opts);
}

// Generates and writes the .onnx file (creating parent folders); returns the model for its metadata.
export function writeZooModel<K extends ZooKind>(kind: K, opts: ZooOptions<K>, path: string): ZooModel {
  const model = generateModel(kind, opts);
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, model.bytes);
  } catch (e) {
    fail('IO', `model zoo: cannot write ${kind} model to '${path}': ${(e as Error).message}`);
  }
  return model;
}
