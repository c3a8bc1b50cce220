// Portable GEMM tile (any CPU): 4x8 register block.
#define LOOM_GEMM_FN backend_cpu_gemm_tile_generic
#define LOOM_GEMM_SKINNY_FN backend_cpu_gemm_skinny_generic
#define LOOM_GEMM_MR 4
#define LOOM_GEMM_NR 8
#include "backend_cpu_gemm_kernel.inc"
