// The full tick with its copies in one graph (LOOM_CUDA_IO_GRAPH): a full tick otherwise enqueues its input
// copies, then launches the captured graph of its launches, then its output copies — one API call per copy
// range beside the graph launch, and a gap on the device between each copy and the graph (the graph's first
// kernel starts only after the copy before it is seen done). Captured with the copies as memcpy nodes, the tick
// is one graph launch: fewer host calls in submit, no copy-to-graph gaps.
//
// A graph's copies name host buffers, and a tick may come through any of several (runTick's pinned staging, the
// executor's staging sets and result blocks, all pinned and of one size per layout): one graph per host layout,
// captured at its first full tick, its copy nodes pointed at the tick's buffers before a launch through another
// pair (cudaGraphExecMemcpyNodeSetParams: host-side, affects this and later launches, not those in flight).
// Sparse ticks and the overlap mode's copy stream keep their own copies.
//
// Why: the tick's own cost on an H100 is ~20 µs (`loom calibrate`'s tick.io fit: 19.75 µs fixed) — a quarter of
// 64 × MLP b1's 85 µs tick, against a target of 1.3x its 57.2 µs weight floor.
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

bool within(const void* p, const uint8_t* base, int64_t bytes) {
  const uint8_t* q = static_cast<const uint8_t*>(p);
  return base != nullptr && q >= base && q < base + bytes;
}

// The copy nodes of a graph captured with io's copies, each placed in the staging layout by its host end (the
// input buffer for a copy to the device, the output buffer for one from it). Throws on a node it cannot place:
// the graph is then not used.
std::vector<cuda_io_copy_node> copy_nodes(const cuda_ctx& c, cudaGraph_t g, const cuda_tick_io& io) {
  const int64_t in_bytes = io.layout ? io.layout->in_bytes : c.mem.sizes.io;
  const int64_t out_bytes = io.layout ? io.layout->out_bytes : c.mem.sizes.io;
  std::vector<cuda_io_copy_node> out;
  for (auto node : cuda_graph_nodes(g)) {
    cudaGraphNodeType t;
    CUDA_CHECK(cudaGraphNodeGetType(node, &t));
    if (t != cudaGraphNodeTypeMemcpy) continue;
    cuda_io_copy_node x;
    x.node = node;
    CUDA_CHECK(cudaGraphMemcpyNodeGetParams(node, &x.p));
    if (x.p.srcPos.x || x.p.srcPos.y || x.p.srcPos.z || x.p.dstPos.x || x.p.dstPos.y || x.p.dstPos.z)
      throw loom_error("an io copy node has an offset position");
    if (within(x.p.srcPtr.ptr, io.in, in_bytes)) {
      x.to_device = true;
      x.host_off = static_cast<const uint8_t*>(x.p.srcPtr.ptr) - io.in;
    } else if (within(x.p.dstPtr.ptr, io.out, out_bytes)) {
      x.to_device = false;
      x.host_off = static_cast<const uint8_t*>(x.p.dstPtr.ptr) - io.out;
    } else {
      throw loom_error("a copy node of the tick reads and writes outside its staging buffers");
    }
    out.push_back(x);
  }
  return out;
}

cuda_io_graph* find(cuda_io_graph_state& G, const io_layout* layout) {
  for (auto& g : G.graphs)
    if (g.layout == layout) return &g;
  return nullptr;
}

void drop(cuda_io_graph& g) {
  if (g.exec) cudaGraphExecDestroy(g.exec);
  if (g.graph) cudaGraphDestroy(g.graph);
  g.exec = nullptr;
  g.graph = nullptr;
}

// Stops io graphs for this plan: full ticks copy around the full tick's graph from now on.
bool give_up(cuda_ctx& c, const std::string& why) {
  cudaGetLastError();
  cuda_io_graph_reset(c);
  c.io_graph.failed = true;
  c.io_graph.note = "LOOM_CUDA_IO_GRAPH=on, given up: " + why + "; full ticks copy around their graph";
  return false;
}

} // namespace

bool cuda_io_graph_from_env() {
  return cuda_env_choice("LOOM_CUDA_IO_GRAPH", kIoGraphByDefault, {{"auto", kIoGraphByDefault}, {"on", true}, {"off", false}});
}

bool cuda_io_graph_launch(cuda_ctx& c, const cuda_tick_io& io) {
  cuda_io_graph_state& G = c.io_graph;
  if (!G.enabled || G.failed || !c.graph.captured) return false;
  cuda_io_graph* g = find(G, io.layout);
  if (!g) {
    cuda_io_graph fresh;
    fresh.layout = io.layout;
    try {
      fresh.exec = cuda_capture(c, cuda_full_body(c), false, &io, &fresh.graph);
      fresh.copies = copy_nodes(c, fresh.graph, io);
    } catch (const std::exception& e) {
      drop(fresh);
      return give_up(c, std::string("capturing the tick with its copies failed: ") + e.what());
    }
    fresh.in = io.in;
    fresh.out = io.out;
    G.graphs.push_back(fresh);
    g = &G.graphs.back();
  }
  if (g->in != io.in || g->out != io.out) {
    for (auto& x : g->copies) {
      cudaMemcpy3DParms p = x.p;
      if (x.to_device) p.srcPtr.ptr = const_cast<uint8_t*>(io.in) + x.host_off;
      else p.dstPtr.ptr = io.out + x.host_off;
      const cudaError_t e = cudaGraphExecMemcpyNodeSetParams(g->exec, x.node, &p);
      if (e != cudaSuccess)
        return give_up(c, std::string("pointing a copy at another staging buffer failed (") + cudaGetErrorString(e) + ")");
    }
    g->in = io.in;
    g->out = io.out;
    G.retargets++;
  }
  CUDA_CHECK(cudaGraphLaunch(g->exec, c.dev.stream));
  G.launched++;
  return true;
}

void cuda_io_graph_reset(cuda_ctx& c) {
  for (auto& g : c.io_graph.graphs) drop(g);
  c.io_graph.graphs.clear();
}

void cuda_io_graph_stats(const cuda_ctx& c, backend_stats& out) {
  const cuda_io_graph_state& G = c.io_graph;
  std::string note = G.note;
  if (note.empty())
    note = G.enabled ? "LOOM_CUDA_IO_GRAPH=on: a full tick is one graph launch with its copies"
                     : std::string("LOOM_CUDA_IO_GRAPH off: a full tick copies around its graph") +
                           (kIoGraphByDefault ? "" : " (auto: opt-in until measured)");
  out.numbers.emplace_back("ioGraphs", static_cast<double>(G.graphs.size()));
  out.numbers.emplace_back("ioGraphTicks", static_cast<double>(G.launched));
  out.numbers.emplace_back("ioGraphRetargets", static_cast<double>(G.retargets));
  out.strings.emplace_back("ioGraphNote", note);
}

} // namespace loom
