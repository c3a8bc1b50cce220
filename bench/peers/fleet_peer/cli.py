"""Command line: argument checks, then the self-test or one run, the result JSON and the exit code
(0 ok, 1 bad input / no torch or CUDA, 2 mismatch, 3 a peer failed)."""
import argparse
import json
import os
import sys
import traceback

from .run import run
from .runners import WHERE
from .self_test import self_test
from .spec import PEERS, PRECISIONS, PeerError
from .util import json_safe, log


def parse_args(argv):
    ap = argparse.ArgumentParser(description="PyTorch peer for Loom's fleet table: same weights, five ways to run a fleet.")
    ap.add_argument("--fleet", help="the hand-off's fleet.json (<work>/<fleet>/peer/fleet.json)")
    ap.add_argument("--out", help="result JSON to write (format loom-peer-result)")
    ap.add_argument("--iters", type=int, default=200, help="timed ticks per peer (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed ticks before timing (default 20)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--peaks-only", action="store_true", help="only measure the card's peaks (no --fleet needed)")
    ap.add_argument("--skip-peaks", action="store_true", help="do not measure peaks (peaks: null)")
    ap.add_argument("--precision", choices=PRECISIONS, default=None,
                    help="fp32 (TF32 off) | tf32 (allow_tf32 on) | bf16 | fp16 (modules in that dtype); default: the "
                         "hand-off's precision, which it must match")
    ap.add_argument("--lstm", choices=["cudnn", "cell"], default="cudnn",
                    help="LSTM tenants as nn.LSTM (cuDNN, default) or as plain torch ops (vmap always uses the latter)")
    ap.add_argument("--self-test", action="store_true", help="test parsing, validation and loading without torch, then exit")
    ap.add_argument("--fixture", help="with --self-test: write the made-up hand-off here and keep it")
    args = ap.parse_args(argv)
    if args.self_test:
        return args
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not peers:
        ap.error(f"--peers: unknown peer(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(PEERS)}")
    args.peers = peers
    if args.iters < 1 or args.warmup < 0:
        ap.error("--iters must be >= 1 and --warmup >= 0")
    if not args.out:
        ap.error("--out is required")
    if args.peaks_only:
        args.fleet = None
    elif not args.fleet:
        ap.error("--fleet is required (or --peaks-only)")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:
        return self_test(args.fixture)
    try:
        result, code = run(args)
    except PeerError as e:
        log(f"error: {e}")
        return 1
    except Exception as e:  # noqa: BLE001 - name where it happened, then the traceback
        log(f"error in {WHERE['peer']} (tenant '{WHERE['tenant']}'): {type(e).__name__}: {e}")
        traceback.print_exc()
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(json_safe(result), f, indent=1)
    log(f"wrote {args.out}")
    for name, r in result["peers"].items():
        print(f"{name:<11} " + (f"p50 {r['p50_us']:10.1f} us  p99 {r['p99_us']:10.1f} us  err {r['maxRelErr']:.1e}" if r else "n/a"))
    return code
