// The CUDA backend's device-level helpers that need no backend instance: error reporting for the CHECK
// macros, binding a context to the calling thread, and the device query behind the "device_info" extension
// (the addon's info() calls it without creating a backend).
#include <string>

#include "backend_cuda_ctx.h"

namespace loom {

void cuda_fail(const std::string& what, const char* status, const char* file, int line) {
  std::string f = file;
  const size_t slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  throw loom_error("CUDA backend: " + what + " failed: " + (status ? status : "?") + " (" + f + ":" + std::to_string(line) + ")");
}

const char* cublas_status_text(cublasStatus_t s) { return cublasGetStatusString(s); }

void cuda_bind(cuda_ctx& c) {
  CUDA_CHECK(cudaSetDevice(c.dev.device));
  CU_CHECK(cuCtxSetCurrent(c.dev.cu_ctx));
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

backend_stats cuda_device_info() {
  backend_stats s;
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
    cudaGetLastError();
    s.strings.emplace_back("error", "cudaGetDeviceProperties failed");
    return s;
  }
  int driver = 0, runtime = 0, major = 0, minor = 0, patch = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  auto ver = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
  s.strings.emplace_back("name", p.name);
  s.strings.emplace_back("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
  s.strings.emplace_back("driver", ver(driver));
  s.strings.emplace_back("runtime", ver(runtime));
  s.strings.emplace_back("cublas", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch));
  s.numbers.emplace_back("memoryBytes", static_cast<double>(p.totalGlobalMem));
  s.numbers.emplace_back("sms", p.multiProcessorCount);
  return s;
}

} // namespace loom
