// kernels.cu includes <cuda_fp16.h>; under the host emulation (cuda_emu.h, included first) it has nothing to add.
#pragma once
#include "cuda_emu.h"
