// The plan's generated kernels as a CUDA module: the cubin `loom compile` wrote when it was built for this
// GPU's architecture (cuModuleLoadData), otherwise kernels.cu compiled here with NVRTC for this GPU.
#include <nvrtc.h>

#include <string>
#include <vector>

#include "backend_cuda.h"

#ifndef LOOM_NVRTC_INCLUDES
#define LOOM_NVRTC_INCLUDES ""
#endif

namespace loom {

namespace {

#define NVRTC_CHECK(expr)                                                                                     \
  do {                                                                                                        \
    const nvrtcResult loom_n_ = (expr);                                                                       \
    if (loom_n_ != NVRTC_SUCCESS) ::loom::cuda_fail(#expr, nvrtcGetErrorString(loom_n_), __FILE__, __LINE__); \
  } while (0)

struct program_guard {
  nvrtcProgram p = nullptr;
  ~program_guard() {
    if (p) nvrtcDestroyProgram(&p);
  }
};

std::vector<std::string> include_dirs() {
  std::vector<std::string> out;
  std::string all = LOOM_NVRTC_INCLUDES, cur;
  for (char c : all) {
    if (c == '|') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<char> nvrtc_compile(const std::string& source, const std::string& arch) {
  program_guard prog;
  NVRTC_CHECK(nvrtcCreateProgram(&prog.p, source.c_str(), "kernels.cu", 0, nullptr, nullptr));
  // The same semantics as the nvcc build of the cubin (no fast math; FMA contraction on, both defaults).
  std::vector<std::string> opts = {"--gpu-architecture=" + arch, "-std=c++17"};
  for (const auto& d : include_dirs()) opts.push_back("-I" + d);
  std::vector<const char*> argv;
  for (const auto& o : opts) argv.push_back(o.c_str());
  const nvrtcResult r = nvrtcCompileProgram(prog.p, static_cast<int>(argv.size()), argv.data());
  if (r != NVRTC_SUCCESS) {
    size_t n = 0;
    nvrtcGetProgramLogSize(prog.p, &n);
    std::string log(n, '\0');
    if (n) nvrtcGetProgramLog(prog.p, &log[0]);
    if (log.size() > 4000) log = log.substr(0, 4000) + "\n...";
    throw loom_error(std::string("NVRTC could not compile the plan's kernels.cu for ") + arch + ": " + nvrtcGetErrorString(r) + "\n" + log);
  }
  size_t size = 0;
  NVRTC_CHECK(nvrtcGetCUBINSize(prog.p, &size));
  std::vector<char> cubin(size);
  NVRTC_CHECK(nvrtcGetCUBIN(prog.p, cubin.data()));
  return cubin;
}

} // namespace

CUmodule cuda_load_kernels(const cuda_options& opts, int cc_major, int cc_minor, std::string& how) {
  const std::string arch = "sm_" + std::to_string(cc_major) + std::to_string(cc_minor);
  std::string why;
  if (opts.force_nvrtc) why = "NVRTC forced";
  else if (opts.cubin.empty()) why = "the plan has no cubin";
  else if (opts.cubin_arch != arch)
    why = "the cubin is for " + (opts.cubin_arch.empty() ? std::string("an unknown arch") : opts.cubin_arch) + ", this GPU is " + arch;
  else {
    CUmodule mod = nullptr;
    const CUresult r = cuModuleLoadData(&mod, opts.cubin.data());
    if (r == CUDA_SUCCESS) {
      how = "cubin " + opts.cubin_arch;
      return mod;
    }
    const char* s = nullptr;
    cuGetErrorString(r, &s);
    why = std::string("cuModuleLoadData of the cubin failed: ") + (s ? s : "unknown error");
  }
  if (opts.kernel_source.empty())
    throw loom_error("cannot load the plan's kernels: " + why + ", and no kernels.cu source was given to compile with NVRTC");
  std::vector<char> cubin = nvrtc_compile(opts.kernel_source, arch);
  CUmodule mod = nullptr;
  CU_CHECK(cuModuleLoadData(&mod, cubin.data()));
  how = "nvrtc " + arch + " (" + why + ")";
  return mod;
}

} // namespace loom
