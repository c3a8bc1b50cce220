// AVX2+FMA GEMM tile (built with -mavx2 -mfma; called only when the CPU has both): 6x16 register block.
#define LOOM_GEMM_FN backend_cpu_gemm_tile_avx2
#define LOOM_GEMM_SKINNY_FN backend_cpu_gemm_skinny_avx2
#define LOOM_GEMM_MR 6
#define LOOM_GEMM_NR 16
#include "backend_cpu_gemm_kernel.inc"
