#!/usr/bin/env python3
"""PyTorch peer for bench/fleet-table.ts (issue 5, "Fleets against PyTorch").

Reads the hand-off that the Node side writes (<work>/<fleet>/peer/fleet.json: each tenant's zoo kind and options,
its ONNX initializers as raw little-endian bytes, its inputs, and Loom's outputs for them), rebuilds every tenant
as a plain torch nn.Module loaded by ONNX initializer name, checks its eager outputs against Loom's, then times
the fleet end to end (pinned host inputs -> device -> every tenant's forward -> pinned host outputs -> sync) as
  eager       python loop over tenants on one stream
  streams     one torch.cuda.Stream per tenant (torch hands these out from its pool of 32 per device)
  graph       the whole eager loop, copies included, captured in one torch.cuda.CUDAGraph
  vmap        torch.func.stack_module_state + functional_call + vmap (same-architecture fleets only)
  vmap_graph  that vmap tick captured in one CUDA graph
and measures the card's peaks (fp32/bf16 matmul FLOP/s, device copy and pinned host->device bandwidth) for the
roofline floor. Writes <out>.json (format "loom-peer-result"); exit 2 if a tenant's outputs differ from Loom's
(the peer would not be the same model), 3 if a peer failed (recorded as null with a note), 1 on bad input.

usage: python3 bench/peers/fleet_torch.py --fleet <work>/<fleet>/peer/fleet.json --out <file.json>
           [--iters 200] [--warmup 20] [--peers eager,streams,graph,vmap,vmap_graph] [--peaks-only]
       python3 bench/peers/fleet_torch.py --self-test     (no torch needed; numpy optional)
"""
# The code lives in the fleet_peer package next to this file, one module per job (fleet_peer/__init__.py lists
# them); this file stays the command that bench/fleet-table.ts and bench/peers/README.md call.
import sys

from fleet_peer.cli import main

if __name__ == "__main__":
    sys.exit(main())
