#include "tick_staging.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

namespace loom {

namespace {

constexpr int64_t kHostAlign = 8;

int64_t align_up(int64_t v) { return (v + kHostAlign - 1) / kHostAlign * kHostAlign; }

std::vector<io_span> merge_spans(std::vector<io_span> r, int64_t gap, int64_t& total) {
  std::sort(r.begin(), r.end(), [](const io_span& a, const io_span& b) { return a.offset < b.offset; });
  std::vector<io_span> out;
  for (const auto& x : r) {
    if (x.bytes <= 0) continue;
    if (!out.empty() && x.offset <= out.back().offset + out.back().bytes + gap) {
      out.back().bytes = std::max(out.back().offset + out.back().bytes, x.offset + x.bytes) - out.back().offset;
    } else {
      out.push_back(x);
    }
  }
  total = 0;
  for (auto& s : out) {
    s.host = total;
    total = align_up(total + s.bytes);
  }
  return out;
}

} // namespace

io_layout make_io_layout(const launch_plan& plan, int64_t gap) {
  std::vector<io_span> ins, outs;
  for (const auto& t : plan.io) {
    for (const auto& s : t.inputs) ins.push_back({s.offset, s.bytes, 0});
    for (const auto& s : t.outputs) outs.push_back({s.offset, s.bytes, 0});
  }
  if (plan.io.empty()) {
    ins.push_back({0, plan.arenas.io, 0});
    outs.push_back({0, plan.arenas.io, 0});
  }
  io_layout l;
  l.in = merge_spans(std::move(ins), gap, l.in_bytes);
  l.out = merge_spans(std::move(outs), gap, l.out_bytes);
  return l;
}

int64_t io_host_offset(const std::vector<io_span>& spans, int64_t offset, int64_t bytes) {
  // the last span starting at or before `offset`
  auto it = std::upper_bound(spans.begin(), spans.end(), offset, [](int64_t off, const io_span& s) { return off < s.offset; });
  if (it == spans.begin()) return -1;
  --it;
  if (offset + bytes > it->offset + it->bytes) return -1;
  return it->host + (offset - it->offset);
}

tenant_slots make_tenant_slots(const launch_plan& plan, const std::vector<io_span>& spans, bool outputs) {
  tenant_slots s;
  s.first.reserve(plan.io.size() + 1);
  for (const auto& t : plan.io) {
    s.first.push_back(static_cast<int32_t>(s.offset.size()));
    for (const auto& slot : outputs ? t.outputs : t.inputs) {
      const int64_t h = io_host_offset(spans, slot.offset, slot.bytes);
      if (h < 0)
        throw loom_error(std::string(outputs ? "output" : "input") + " slot at io offset " + std::to_string(slot.offset) +
                         " is outside the staging layout");
      s.offset.push_back(slot.offset);
      s.bytes.push_back(slot.bytes);
      s.host.push_back(h);
    }
  }
  s.first.push_back(static_cast<int32_t>(s.offset.size()));
  return s;
}

namespace {

void check_tenant(const tenant_slots& outs, int32_t t) {
  if (t < 0 || static_cast<size_t>(t) + 1 >= outs.first.size())
    throw loom_error("live tenant " + std::to_string(t) + " is not a tenant of the plan (it has " + std::to_string(outs.first.size() - 1) +
                     ")");
}

} // namespace

size_t compact_bytes(const tenant_slots& outs, const std::vector<int32_t>& live) {
  int64_t n = 0;
  for (const int32_t t : live) {
    check_tenant(outs, t);
    for (int32_t k = outs.first[static_cast<size_t>(t)]; k < outs.first[static_cast<size_t>(t) + 1]; k++)
      n += align_up(outs.bytes[static_cast<size_t>(k)]);
  }
  return static_cast<size_t>(n);
}

void compact_copy(const tenant_slots& outs, const std::vector<int32_t>& live, const uint8_t* src, uint8_t* dst) {
  // slots that follow each other in both buffers are copied as one run (a full tick of packed slots: one memcpy)
  int64_t at = 0, from = 0, to = 0, run = 0;
  for (const int32_t t : live) {
    check_tenant(outs, t);
    for (int32_t k = outs.first[static_cast<size_t>(t)]; k < outs.first[static_cast<size_t>(t) + 1]; k++) {
      const size_t i = static_cast<size_t>(k);
      if (run > 0 && outs.host[i] == from + run && at == to + run) {
        run += outs.bytes[i];
      } else {
        if (run > 0) std::memcpy(dst + to, src + from, static_cast<size_t>(run));
        from = outs.host[i];
        to = at;
        run = outs.bytes[i];
      }
      at += align_up(outs.bytes[i]);
    }
  }
  if (run > 0) std::memcpy(dst + to, src + from, static_cast<size_t>(run));
}

host_block::host_block(const host_memory& m, size_t n) : bytes(n), mem(m) {
  const size_t want = std::max<size_t>(n, 1);
  data = mem.alloc ? mem.alloc(want) : static_cast<uint8_t*>(::operator new(want));
}

host_block::~host_block() {
  if (!data) return;
  if (mem.release) mem.release(data);
  else ::operator delete(data);
}

block_pool::block_pool(const host_memory& mem, size_t block_bytes, int blocks) : blocks_(std::max(1, blocks)) {
  for (int i = 0; i < blocks_; i++) free_.push_back(std::make_unique<host_block>(mem, block_bytes));
}

std::shared_ptr<host_block> block_pool::acquire() {
  std::unique_ptr<host_block> b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return nullptr;
    b = std::move(free_.back());
    free_.pop_back();
  }
  std::weak_ptr<block_pool> pool = weak_from_this();
  return std::shared_ptr<host_block>(b.release(), [pool](host_block* raw) {
    if (auto p = pool.lock()) p->give_back(raw);
    else delete raw;
  });
}

void block_pool::give_back(host_block* b) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace_back(b);
}

} // namespace loom
