// Programmatic dependent launch (Hopper and later) for the CUDA backend's own kernels: a kernel launched with
// programmatic stream serialization may be scheduled while the kernel before it on its stream is still
// running, so its launch latency and block scheduling overlap that kernel's tail instead of following it. In a
// captured tick the launch becomes a programmatic graph edge. Each of Loom's kernels (the generated ones:
// prelude.cuh.hbs, and the GEMM epilogue, skinny / tiled GEMM and io gather kernels) begins with
// cuda_pdl_enter(): `griddepcontrol.wait` blocks until the kernel before it has completed and its memory is
// visible (so nothing it reads or overwrites is touched early), then `griddepcontrol.launch_dependents` lets
// the next kernel be scheduled. Both are no-ops for a kernel launched without the attribute, and compiled out
// below sm_90. The host decides per launch (backend_cuda_enqueue.cc): only a Loom kernel right after another
// Loom kernel on the same stream, where the policy allows (LOOM_CUDA_PDL). nvcc only.
#pragma once

#include <cuda_runtime.h>

namespace loom {

__device__ __forceinline__ void cuda_pdl_enter() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// kernel<<<grid, block, 0, stream>>>(args...), with programmatic stream serialization when `pdl`.
template <typename... Params, typename... Args>
cudaError_t cuda_launch_kernel(void (*kernel)(Params...), unsigned grid, unsigned block, cudaStream_t stream, bool pdl, Args... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

} // namespace loom
