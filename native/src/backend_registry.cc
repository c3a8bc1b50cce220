// The backends built into this addon, found by name. The only place that knows which backends a build has:
// the executor and the addon iterate or look up this list instead of testing LOOM_HAVE_CUDA themselves.
#include <string>
#include <vector>

#include "backend.h"

namespace loom {

namespace {

struct known_backend {
  const char* name;
  const backend_entry* entry; // null: not built into this addon
  const char* missing;        // why not, for the executor's message
};

const std::vector<known_backend>& known() {
  static const std::vector<known_backend> k = {
    {"cpu", &backend_cpu_entry, nullptr},
#if LOOM_HAVE_EMU
    {"cuda-emu", &backend_emu_entry, nullptr},
#else
    {"cuda-emu", nullptr, "the CUDA kernel emulation needs dlopen and ucontext (POSIX)"},
#endif
#if LOOM_HAVE_CUDA
    {"cuda", &backend_cuda_entry, nullptr},
#else
    {"cuda", nullptr, "no CUDA toolkit with cuBLAS at build time"},
#endif
  };
  return k;
}

} // namespace

const std::vector<const backend_entry*>& backend_registry() {
  static const std::vector<const backend_entry*> entries = [] {
    std::vector<const backend_entry*> out;
    for (const auto& k : known())
      if (k.entry) out.push_back(k.entry);
    return out;
  }();
  return entries;
}

const backend_entry* backend_find(const std::string& name) {
  for (const backend_entry* e : backend_registry())
    if (name == e->name) return e;
  return nullptr;
}

const std::vector<const char*>& backend_known_names() {
  static const std::vector<const char*> names = [] {
    std::vector<const char*> out;
    for (const auto& k : known()) out.push_back(k.name);
    return out;
  }();
  return names;
}

const char* backend_missing_reason(const std::string& name) {
  for (const auto& k : known())
    if (name == k.name) return k.entry ? nullptr : k.missing;
  return nullptr;
}

} // namespace loom
