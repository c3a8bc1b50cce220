"""Reading the hand-off that bench/fleet-table.ts writes (<work>/<fleet>/peer/fleet.json, format
loom-peer-fleet v1): validation that names the tenant and the thing, then the tensors, one initializer at a
time, converted to torch's layout."""
import json
import os

from .deps import np
from .spec import ITEMSIZE, TOLERANCE, PeerError, initializer_spec, io_spec, normalize_options


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _file(base, rel, where):
    if not isinstance(rel, str) or not rel:
        raise PeerError(f"{where}: 'file' must be a non-empty path")
    path = rel if os.path.isabs(rel) else os.path.join(base, rel)
    if not os.path.isfile(path):
        raise PeerError(f"{where}: file '{path}' does not exist")
    return path


def _shape(v, where):
    if not isinstance(v, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in v):
        raise PeerError(f"{where}: 'shape' must be a list of non-negative integers, got {v!r}")
    return v


def _validate_weights(t, w, spec, base, where):
    if not isinstance(w, dict) or not isinstance(w.get("tensors"), list):
        raise PeerError(f"{where}: 'weights' must be an object with a 'tensors' list")
    path = _file(base, w.get("file"), f"{where} weights")
    size = os.path.getsize(path)
    given = {}
    for k, e in enumerate(w["tensors"]):
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str):
            raise PeerError(f"{where}: weights.tensors[{k}] has no 'name'")
        if name in given:
            raise PeerError(f"{where}: initializer '{name}' listed twice")
        given[name] = e
    want = {i["name"]: i for i in spec}
    missing = [n for n, i in want.items() if n not in given and not i["optional"]]
    if missing:
        raise PeerError(f"{where}: missing initializer(s) {', '.join(missing)} (the zoo {t['kind']} with these options has them)")
    extra = [n for n in given if n not in want]
    if extra:
        raise PeerError(f"{where}: unexpected initializer(s) {', '.join(extra)} (the torch peer's {t['kind']} has no such weight)")
    tensors = []
    for i in spec:
        e = given.get(i["name"])
        if e is None:
            continue
        w_where = f"{where} initializer '{i['name']}'"
        shape = _shape(e.get("shape"), w_where)
        if shape != i["shape"]:
            raise PeerError(f"{w_where}: shape {shape}, expected {i['shape']} for these options")
        off, nb = e.get("offset"), e.get("bytes")
        if not isinstance(off, int) or not isinstance(nb, int) or off < 0 or off + nb > size:
            raise PeerError(f"{w_where}: offset {off!r} + bytes {nb!r} outside '{path}' ({size} bytes)")
        # the format says float32; integer buffers (position ids) may come as int64, told by dtype or by size
        dtype = e.get("dtype") or ("int64" if nb == 8 * _numel(shape) and nb > 0 else "float32")
        if dtype not in ITEMSIZE or nb != ITEMSIZE[dtype] * _numel(shape):
            raise PeerError(f"{w_where}: {nb} bytes do not hold shape {shape} of {dtype}")
        tensors.append({"name": i["name"], "shape": shape, "offset": off, "bytes": nb, "dtype": dtype,
                        "targets": i["targets"]})
    return path, tensors


def _validate_io(entries, want, base, where, what):
    if not isinstance(entries, list):
        raise PeerError(f"{where}: '{what}' must be a list")
    by_name = {}
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise PeerError(f"{where}: {what}[{k}] has no 'name'")
        by_name[e["name"]] = e
    names = [w[0] for w in want]
    if sorted(by_name) != sorted(names):
        raise PeerError(f"{where}: {what} are {sorted(by_name)}, the model's are {names}")
    out = []
    for w in want:
        name, dtype, shape = (w[0], w[1], w[2]) if len(w) == 3 else (w[0], "float32", w[1])
        e, io_where = by_name[name], f"{where} {what[:-1]} '{name}'"
        if e.get("dtype", dtype) != dtype:
            raise PeerError(f"{io_where}: dtype {e.get('dtype')}, the model's is {dtype}")
        if _shape(e.get("shape"), io_where) != shape:
            raise PeerError(f"{io_where}: shape {e.get('shape')}, the model's is {shape}")
        path = _file(base, e.get("file"), io_where)
        if os.path.getsize(path) != ITEMSIZE[dtype] * _numel(shape):
            raise PeerError(f"{io_where}: '{path}' has {os.path.getsize(path)} bytes, shape {shape} of {dtype} needs {ITEMSIZE[dtype] * _numel(shape)}")
        out.append({"name": name, "dtype": dtype, "shape": shape, "path": path})
    return out


def parse_fleet(path):
    """fleet.json -> validated plan for the peer (no tensors read yet). Every error names the tenant and thing."""
    if not os.path.isfile(path):
        raise PeerError(f"fleet file '{path}' does not exist")
    try:
        with open(path) as f:
            doc = json.load(f)
    except ValueError as e:
        raise PeerError(f"fleet file '{path}' is not JSON: {e}")
    if not isinstance(doc, dict) or doc.get("format") != "loom-peer-fleet" or doc.get("version") != 1:
        raise PeerError(f"'{path}' is not a loom-peer-fleet version 1 file (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    prec = doc.get("precision", "fp32")
    if prec not in TOLERANCE:
        raise PeerError(f"'{path}': precision '{prec}' unknown (known: {', '.join(TOLERANCE)})")
    if not isinstance(doc.get("tenants"), list) or not doc["tenants"]:
        raise PeerError(f"'{path}': 'tenants' must be a non-empty list")
    base, tenants, seen = os.path.dirname(os.path.abspath(path)), [], set()
    for k, t in enumerate(doc["tenants"]):
        tid = t.get("id") if isinstance(t, dict) else None
        if not isinstance(tid, str) or tid in seen:
            raise PeerError(f"'{path}': tenants[{k}] has a missing or repeated 'id' ({tid!r})")
        seen.add(tid)
        where = f"tenant '{tid}'"
        kind, batch = t.get("kind"), t.get("batch")
        o = normalize_options(kind, t.get("options", {}), where)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise PeerError(f"{where}: 'batch' must be a positive integer, got {batch!r}")
        ins, outs = io_spec(kind, o, batch)
        tenant = {"id": tid, "kind": kind, "opts": o, "batch": batch}
        tenant["weights_file"], tenant["tensors"] = _validate_weights(tenant, t.get("weights"), initializer_spec(kind, o), base, where)
        tenant["inputs"] = _validate_io(t.get("inputs"), ins, base, where, "inputs")
        tenant["outputs"] = _validate_io(t.get("outputs"), outs, base, where, "outputs")
        tenants.append(tenant)
    return {"fleet": doc.get("fleet", os.path.basename(base)), "precision": prec, "tenants": tenants}



def _gates_onnx_to_torch(a):
    # ONNX LSTM gate blocks are i, o, f, c; torch's are i, f, g(=c), o
    i, o, f, c = np.split(a, 4, axis=0)
    return np.concatenate([i, f, c, o], axis=0)


TRANSFORMS = {
    "id": lambda a: a,
    "T": lambda a: a.T,
    "lstm_w": lambda a: _gates_onnx_to_torch(a[0]),
    "lstm_bw": lambda a: _gates_onnx_to_torch(a[0, : a.shape[1] // 2]),
    "lstm_br": lambda a: _gates_onnx_to_torch(a[0, a.shape[1] // 2:]),
}


def read_array(path, dtype, shape, offset=0):
    a = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"), count=_numel(shape), offset=offset)
    if a.size != _numel(shape):
        raise PeerError(f"'{path}' ended early: {a.size} of {_numel(shape)} {dtype} values at offset {offset}")
    return a.reshape(shape).astype(np.dtype(dtype), copy=False)


def tenant_arrays(t):
    """Yields (torch name, contiguous numpy array) one initializer at a time, so nothing is kept around."""
    for e in t["tensors"]:
        a = read_array(t["weights_file"], e["dtype"], e["shape"], e["offset"])
        for name, fn in e["targets"]:
            yield name, np.ascontiguousarray(TRANSFORMS[fn](a))
