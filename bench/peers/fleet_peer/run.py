"""One fleet end to end: load every tenant, check the eager outputs against Loom's, time each peer, and build
the result document (format loom-peer-result)."""
import datetime
import math
import platform
import traceback

from .check import worst
from .deps import np, torch
from .handoff import parse_fleet
from .runners import WHERE, TenantWork, eager_tick, run_peer
from .spec import PRECISIONS, TOLERANCE, PeerError, arch_key
from .timing import measure_peaks
from .util import cpu_name, log


def run(args):
    plan = parse_fleet(args.fleet) if args.fleet else None  # a bad hand-off fails before torch starts
    if torch is None:
        raise PeerError("torch is not installed (python3 -c 'import torch' fails); only --self-test runs without it")
    if np is None:
        raise PeerError("numpy is not installed; the peer reads the hand-off's tensors with it")
    if not torch.cuda.is_available():
        raise PeerError("torch sees no CUDA device (torch.cuda.is_available() is False)")
    device = torch.device("cuda")
    log(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
        f"device {torch.cuda.get_device_name(0)}, python {platform.python_version()}, numpy {np.__version__}")
    torch.set_grad_enabled(False)  # inference only; vmap and graph capture both work under no_grad
    prec = peer_precision(args.precision, plan)
    dtype, tf32 = precision_setup(prec)
    notes = ["tick wall time is time.perf_counter around one tick after warm-up; Python GC disabled while timing",
             "peaks: best of 5 (matmul 8192^3, TF32 off) / 10 (1 GiB D2D copy, 2*bytes/time) / 5 (1 GiB pinned H2D)",
             "torch.backends.cudnn.benchmark = True (algorithm choice happens in warm-up, before any capture)",
             PRECISION_NOTES[prec]]
    result = {"format": "loom-peer-result", "version": 1, "fleet": plan["fleet"] if plan else None,
              "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
              "cpu": cpu_name(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "precision": prec, "iters": args.iters, "warmup": args.warmup, "peaks": None,
              "check": {}, "maxRelErr": None, "peers": {}, "notes": notes}
    WHERE.update(peer="peaks", tenant=None)
    if not args.skip_peaks:
        set_tf32(False)  # the peaks are fp32's and bf16's, whatever the fleet runs at
        result["peaks"] = measure_peaks(device)
    set_tf32(tf32)
    if plan is None:
        return result, 0
    WHERE["peer"] = "load"
    n, works = len(plan["tenants"]), []
    for k, t in enumerate(plan["tenants"]):
        WHERE["tenant"] = t["id"]
        if k % max(1, n // 8) == 0 or k == n - 1:
            log(f"loading tenant {k + 1}/{n} '{t['id']}' ({t['kind']})")
        works.append(TenantWork(t, device, dtype))
        if args.lstm == "cell" and t["kind"] == "lstm":
            works[-1].module.cell = True
    if args.lstm == "cell" and any(w.kind == "lstm" for w in works):
        notes.append("--lstm cell: every LSTM runs as plain torch ops instead of cuDNN's nn.LSTM")
    log(f"loaded {n} tenants; {torch.cuda.memory_allocated() / 2 ** 30:.1f} GiB on the device")

    WHERE.update(peer="check", tenant=None)
    for w in works:
        w.poison()
    eager_tick(works)("sync")
    tol, errs = TOLERANCE[prec], {}
    for w in works:
        errs.update(w.errors())
    result["check"] = {tid: max(e if math.isfinite(e) else math.inf for e in es) for tid, es in errs.items()}
    result["maxRelErr"] = worst(errs)
    bad = [tid for tid, e in result["check"].items() if not e <= tol]
    log(f"check: max rel err vs Loom {result['maxRelErr']:.2e} over {n} tenants (tolerance {tol:g})")
    if bad:
        notes.append(f"MISMATCH: {len(bad)} tenant(s) differ from Loom's outputs by more than {tol:g}: "
                     + ", ".join(f"{tid} ({result['check'][tid]:.3g})" for tid in bad[:20]))
        log("MISMATCH: the peer is not computing the same model for " + ", ".join(bad[:20]))

    same_arch = len({arch_key(t) for t in plan["tenants"]}) == 1
    failed, state = [], {}
    for name in args.peers:
        WHERE.update(peer=name, tenant=None)
        if name.startswith("vmap") and not same_arch:
            result["peers"][name] = None
            continue
        try:
            result["peers"][name] = run_peer(name, works, args, device, dtype, notes, state)
            if not result["peers"][name]["maxRelErr"] <= tol:
                bad.append(name)
                notes.append(f"MISMATCH: peer {name}'s outputs differ from Loom's (max rel err {result['peers'][name]['maxRelErr']:.3g})")
        except Exception as e:  # noqa: BLE001 - one failing peer must not hide the others' numbers
            log(f"error in peer '{name}' (tenant '{WHERE['tenant']}'): {type(e).__name__}: {e}")
            traceback.print_exc()
            result["peers"][name] = None
            notes.append(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}) in tenant {WHERE['tenant']}")
            failed.append(name)
        finally:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    if not same_arch and any(p.startswith("vmap") for p in args.peers):
        kinds = sorted({t["kind"] for t in plan["tenants"]})
        notes.append(f"vmap, vmap_graph: null, the fleet is not one architecture (kinds {', '.join(kinds)} / differing options or batch)")
    return result, 2 if bad else 3 if failed else 0


# How each precision runs in torch: fp32 is true fp32 (no TF32), like Loom's fp32 plans; tf32 keeps fp32 tensors
# and lets cuBLAS/cuDNN round matmul and conv operands to TF32; bf16 and fp16 convert the modules, inputs and
# outputs to that dtype (weights included, as `.to(torch.bfloat16)` does).
PRECISION_NOTES = {
    "fp32": "precision fp32: float32 modules, TF32 off (torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False)",
    "tf32": "precision tf32: float32 modules, torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 = True",
    "bf16": "precision bf16: modules, inputs and outputs in torch.bfloat16, TF32 off",
    "fp16": "precision fp16: modules, inputs and outputs in torch.float16, TF32 off",
}


def peer_precision(flag, plan):
    """--precision when given, else the hand-off's (Loom's plan precision); a flag that contradicts the hand-off
    is an error (the check against Loom's outputs would use the wrong tolerance)."""
    handoff = plan["precision"] if plan else None
    if flag is not None and flag not in PRECISIONS:
        raise PeerError(f"--precision '{flag}' unknown (known: {', '.join(PRECISIONS)})")
    if flag is not None and handoff is not None and flag != handoff:
        raise PeerError(f"--precision {flag} but the hand-off was written for Loom at {handoff}")
    return flag or handoff or "fp32"


def precision_setup(prec):
    """(module dtype, TF32 on?) for a precision."""
    return {"fp32": (torch.float32, False), "tf32": (torch.float32, True),
            "bf16": (torch.bfloat16, False), "fp16": (torch.float16, False)}[prec]


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cudnn.benchmark = True
