import { convOps } from './conv.js';
import { gemmOps } from './gemm.js';
import { rnnOps } from './rnn.js';

// Linear algebra family: Gemm/MatMul, Conv/ConvTranspose, LSTM/GRU/RNN (each in its own file).
export const linalgOps = {
  ...gemmOps,
  ...convOps,
  ...rnnOps,
} as const;
