"""The peers: a tenant's (or a vmapped fleet's) unit of work with pinned host buffers, and the ticks that run
them: eager loop, one stream per tenant, CUDA graph, vmap, vmap + graph."""
from .check import rel_err, worst
from .deps import torch
from .handoff import read_array
from .models import build_module, load_module
from .timing import tick_stats, time_ticks
from .util import log


WHERE = {"peer": None, "tenant": None}  # what was running, for the error message


def _mark(trace, what):
    if trace:
        WHERE["tenant"] = what


class HostIO:
    """Static pinned host buffers and device inputs (host_in, dev_in, host_out) of a unit of work."""

    def copy_in(self):
        for d, h in zip(self.dev_in, self.host_in):
            d.copy_(h, non_blocking=True)

    def copy_out(self, outs):
        for h, o in zip(self.host_out, outs):
            h.copy_(o, non_blocking=True)

    def poison(self):  # a peer that never wrote its outputs must not pass the check on an earlier peer's
        for h in self.host_out:
            h.fill_(float("nan"))


class TenantWork(HostIO):
    """One tenant's tick: pinned host inputs -> device, forward, outputs -> pinned host."""

    def __init__(self, t, device, dtype):
        self.id, self.kind, self.opts = t["id"], t["kind"], t["opts"]
        self.module = build_module(t["kind"], t["opts"], device, dtype)
        load_module(self.module, t)
        self.host_in = []
        for io in t["inputs"]:
            h = torch.from_numpy(read_array(io["path"], io["dtype"], io["shape"]))
            self.host_in.append((h.to(dtype) if h.is_floating_point() else h).pin_memory())
        self.dev_in = [torch.empty(h.shape, dtype=h.dtype, device=device) for h in self.host_in]
        self.host_out = [torch.empty(o["shape"], dtype=dtype, pin_memory=True) for o in t["outputs"]]
        self.loom = [read_array(o["path"], "float32", o["shape"]) for o in t["outputs"]]

    def compute(self):
        return self.module(*self.dev_in)

    def errors(self):
        return {self.id: [rel_err(h.float().numpy(), l) for h, l in zip(self.host_out, self.loom)]}


class VmapWork(HostIO):
    """All tenants of one architecture as one vmapped functional_call over stacked weights and inputs."""

    def __init__(self, works, device, dtype):
        from torch.func import functional_call, stack_module_state
        self.works = works
        self.params, self.buffers = stack_module_state([w.module for w in works])
        base = build_module(works[0].kind, works[0].opts, "meta", dtype)
        if works[0].kind == "lstm":
            base.cell = True

        def one(params, buffers, *xs):
            return functional_call(base, (params, buffers), xs)

        self.fn = torch.vmap(one, in_dims=(0, 0) + (0,) * len(works[0].host_in))
        self.host_in = [torch.stack([w.host_in[j] for w in works]).pin_memory() for j in range(len(works[0].host_in))]
        self.dev_in = [torch.empty(h.shape, dtype=h.dtype, device=device) for h in self.host_in]
        self.host_out = [torch.empty((len(works),) + tuple(h.shape), dtype=h.dtype, pin_memory=True) for h in works[0].host_out]

    def compute(self):
        return self.fn(self.params, self.buffers, *self.dev_in)

    def errors(self):
        return {w.id: [rel_err(h[i].float().numpy(), l) for h, l in zip(self.host_out, w.loom)] for i, w in enumerate(self.works)}


def step(works, trace=None):
    for w in works:
        _mark(trace, getattr(w, "id", "vmap"))
        w.copy_in()
        w.copy_out(w.compute())
        if trace == "sync":
            torch.cuda.synchronize()  # pins an asynchronous CUDA error on this tenant


def eager_tick(works):
    def tick(trace=None):
        step(works, trace)
        torch.cuda.synchronize()
    return tick


def streams_tick(works, notes):
    streams = [torch.cuda.Stream() for _ in works]
    distinct = len({s.cuda_stream for s in streams})
    if distinct < len(works):
        notes.append(f"streams: torch.cuda.Stream() hands out pooled streams, so {len(works)} tenants ran on {distinct} distinct streams")

    def tick(trace=None):
        for w, s in zip(works, streams):
            with torch.cuda.stream(s):
                step([w], trace)
        torch.cuda.synchronize()
    return tick


def capture(fn):
    """Warm-up on a side stream (cuBLAS/cuDNN handles, cudnn.benchmark choices), then one CUDA graph of fn."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        res = fn()
    torch.cuda.synchronize()
    return g, res


def graph_tick(works, notes, label):
    """The whole step, copies included, in one graph; if copies to/from pinned memory refuse to be captured,
    the compute alone is captured and the copies run around the replay (said in the notes)."""
    try:
        g, _ = capture(lambda: step(works, "name"))

        def tick(trace=None):
            g.replay()
            torch.cuda.synchronize()
        return tick, "one CUDA graph: H2D copies, every forward, D2H copies; replay + synchronize"
    except Exception as e:  # noqa: BLE001 - any capture failure gets the fallback, the reason goes to the notes
        log(f"{label}: capture with host copies failed ({type(e).__name__}: {e}); capturing the device work only")
        notes.append(f"{label}: host<->device copies could not be captured ({type(e).__name__}: {e}); they run outside the graph")
        torch.cuda.synchronize()
    g, outs = capture(lambda: [w.compute() for w in works])

    def tick_copies_outside(trace=None):
        for w in works:
            w.copy_in()
        g.replay()
        for w, o in zip(works, outs):
            w.copy_out(o)
        torch.cuda.synchronize()
    return tick_copies_outside, "H2D copies, one CUDA graph of every forward, D2H copies; synchronize"


SEMANTICS = {
    "eager": "python loop over tenants on one stream: H2D (non_blocking), forward, D2H (non_blocking); synchronize",
    "streams": "one torch.cuda.Stream per tenant: its H2D, forward, D2H on its stream; synchronize all",
    "vmap": "stack_module_state + functional_call + vmap: one stacked H2D per input, vmapped forward, one D2H per output; synchronize",
}


def run_peer(name, works, args, device, dtype, notes, state):
    units = works
    if name.startswith("vmap"):
        if state.get("vmap") is None:
            log(f"{name}: stacking {len(works)} tenants' weights (stack_module_state)")
            state["vmap"] = VmapWork(works, device, dtype)
            if works[0].kind == "lstm":
                notes.append("vmap: the LSTM step runs as plain torch ops (linear + sigmoid/tanh), vmap cannot batch cuDNN's fused LSTM")
        units = [state["vmap"]]
    for u in units:
        u.poison()
    if name in ("eager", "vmap"):
        tick, semantics = eager_tick(units), SEMANTICS[name]
    elif name == "streams":
        tick, semantics = streams_tick(units, notes), SEMANTICS[name]
    else:
        tick, semantics = graph_tick(units, notes, name)
    tick("sync")
    us = time_ticks(tick, args.warmup, args.iters)
    errs = {}
    for u in units:
        errs.update(u.errors())
    res = tick_stats(us, semantics)
    res["maxRelErr"] = worst(errs)
    log(f"{name}: p50 {res['p50_us']:.1f} us, p99 {res['p99_us']:.1f} us, max rel err vs Loom {res['maxRelErr']:.2e}")
    return res
