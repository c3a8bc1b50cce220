// The GEMM activations on the device, shared by the epilogue kernel (backend_cuda_epilogue.cu) and the
// skinny-GEMM kernel's fused store (backend_cuda_gemv.cu), so both compute the same bits. In f32 exactly as
// the CPU backend's cpu_activation<float> (ir/ops/activation.ts). `act` is loom::activation_kind as int
// (the order is pinned by static_asserts in backend_cuda_tables.cc). nvcc only.
#pragma once

namespace loom {

__device__ __forceinline__ float cuda_activation(int act, float x, float p0, float p1) {
  switch (act) {
    case 0: return x;                                                                                // none
    case 1: return x > 0.0f ? x : 0.0f;                                                              // relu
    case 2: return 1.0f / (1.0f + expf(-x));                                                         // sigmoid
    case 3: return tanhf(x);                                                                         // tanh
    case 4: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));                            // gelu_erf
    case 5: return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x))); // gelu_tanh
    case 6: return x >= 0.0f ? x : p0 * x;                                                           // leaky_relu
    case 7: return fminf(p1, fmaxf(p0, x));                                                          // clip (min, max)
    case 8: return fmaxf(0.0f, fminf(1.0f, p0 * x + p1));                                            // hard_sigmoid
    case 9: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));                                    // hard_swish
  }
  return x;
}

// v (= alpha · the product) + beta · bias + the residual, then the activation: the whole epilogue of one C
// element at row r, column j of its entry (the plan's row-major view). bias_mode: 0 none, 1 row (bias[j]), 2
// col (bias[r]), 3 full (bias[r·ld_bias + j]); a null bias adds nothing; `res` points at this element's
// residual (null: none), added after the bias as the CPU backend does.
__device__ __forceinline__ float cuda_epilogue_value(float v, const float* bias, int bias_mode, long long ld_bias, long long r, long long j,
                                                     float beta, int act, float p0, float p1, const float* res = nullptr) {
  if (bias) {
    switch (bias_mode) {
      case 1: v += beta * bias[j]; break;
      case 2: v += beta * bias[r]; break;
      case 3: v += beta * bias[r * ld_bias + j]; break;
      default: break;
    }
  }
  if (res) v += *res;
  return cuda_activation(act, v, p0, p1);
}

} // namespace loom
