"""Output checking: a peer's outputs against Loom's (norm-wise relative error)."""
import math

from .deps import np
from .spec import TINY, PeerError


def rel_err(a, b):
    """||a - b|| / max(||b||, tiny) over flattened values, in float64; inf when anything is not finite."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise PeerError(f"output sizes differ: {a.size} vs {b.size}")
    d = float(np.linalg.norm(a - b))
    if not math.isfinite(d):
        return math.inf
    return d / max(float(np.linalg.norm(b)), TINY)


def worst(errs):
    """Largest per-output error of {tenant: [err per output]}; NaN counts as infinitely wrong."""
    return max((e if math.isfinite(e) else math.inf for es in errs.values() for e in es), default=0.0)
