// Staged ticks: where a tick's bytes live on the host. The tenants' input slots are laid out once per plan
// (io_layout: the slots merged into spans of the io arena, each with its place in one compact host buffer),
// the caller writes a tick's inputs straight into one of a few staging buffers of that layout (pinned
// memory on the CUDA backend, exposed to JS as external ArrayBuffers), and the tick's outputs land in a
// buffer of the output layout: for the runtime's ticks the set's landing buffer, from which the live tenants'
// output bytes are gathered into a compact result (compact_copy); for submitTick without a live list a pooled
// result block that JS reads in place. No N-API and no backend handles here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "plan.h"

namespace loom {

// One merged run of io-arena bytes and its place in the compact host buffer.
struct io_span {
  int64_t offset = 0; // io arena byte offset
  int64_t bytes = 0;
  int64_t host = 0; // byte offset in the host buffer
};

struct io_layout {
  std::vector<io_span> in, out; // sorted by offset, disjoint
  int64_t in_bytes = 0, out_bytes = 0;
};

// The gap below which the executor's layout and the CUDA backend's copies merge slots into one span: one value,
// so every range the CUDA backend copies (full or sparse tick) lies inside one span of the layout.
constexpr int64_t kStagingMergeGap = int64_t(64) << 10;

// Slots closer than `gap` bytes share a span (one device copy instead of two; the gap's bytes are copied too).
// Host offsets are 8-byte aligned so every dtype can be viewed in place. A plan without a slot table
// (hand-built) gets one span over the whole io arena each way.
io_layout make_io_layout(const launch_plan& plan, int64_t gap);

// Where io range [offset, offset + bytes) lies in the host buffer of `spans`, or -1 when no span holds it.
int64_t io_host_offset(const std::vector<io_span>& spans, int64_t offset, int64_t bytes);

// Every plan tenant's input or output slots and where the layout puts them, in flat tables built once per plan,
// so a tick touches only its live tenants' rows: tenant t's slots are [first[t], first[t + 1]), in table order.
struct tenant_slots {
  std::vector<int32_t> first;
  std::vector<int64_t> offset, bytes, host; // io arena offset, bytes, offset in the layout's host buffer
};

// Throws loom_error when a slot lies outside `spans` (the layout and the plan disagree).
tenant_slots make_tenant_slots(const launch_plan& plan, const std::vector<io_span>& spans, bool outputs);

// A compact result: the live tenants' output bytes only, in the order of `live` (plan tenant indices), each tenant's
// slots in table order, each slot starting at the next multiple of 8 bytes (runtime/tick-io.ts TickCodec reads
// it with the same rule). compact_bytes: its size; compact_copy: from a result in the layout (`src`) into `dst`.
// Throws loom_error on a tenant index outside the plan.
size_t compact_bytes(const tenant_slots& outs, const std::vector<int32_t>& live);
void compact_copy(const tenant_slots& outs, const std::vector<int32_t>& live, const uint8_t* src, uint8_t* dst);

// Host memory a backend hands out for staging and results (pinned on the CUDA backend). The functions need
// no backend instance: a block may outlive the backend that allocated it (JS holds it until collected).
struct host_memory {
  uint8_t* (*alloc)(size_t bytes) = nullptr; // throws loom_error; null: the executor uses operator new
  void (*release)(uint8_t* p) = nullptr;
};

struct host_block {
  host_block(const host_memory& mem, size_t bytes);
  ~host_block();
  host_block(const host_block&) = delete;
  host_block& operator=(const host_block&) = delete;
  uint8_t* data = nullptr;
  size_t bytes = 0;
  host_memory mem;
};

// Result blocks, reused: a block goes back to the pool when its last holder (a tick in flight, or the JS
// ArrayBuffer over it, at garbage collection) lets go. All `blocks` are allocated when the pool is made and it
// never grows: acquire() gives null when none is free, and that tick's result is copied instead. So no tick
// pays for allocating (on CUDA: pinning) memory, and a caller holding thousands of results does not pin
// thousands of blocks.
class block_pool : public std::enable_shared_from_this<block_pool> {
 public:
  block_pool(const host_memory& mem, size_t block_bytes, int blocks);
  std::shared_ptr<host_block> acquire();
  int blocks() const { return blocks_; }

 private:
  void give_back(host_block* b);
  int blocks_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<host_block>> free_;
};

} // namespace loom
