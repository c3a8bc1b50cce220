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
import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
import traceback

try:
    import numpy as np
except ImportError:  # the self-test's pure-Python half still runs
    np = None

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # parsing, validation and the self-test do not need it
    torch = nn = F = None

PEERS = ["eager", "streams", "graph", "vmap", "vmap_graph"]
KINDS = ["mlp", "lstm", "resnet18", "encoder"]
# Options every zoo kind accepts that do not change the graph the peer builds (batch comes from the tenant).
COMMON_OPTIONS = {"seed", "name", "batch"}
# Zoo defaults (models/zoo/*.ts): the hand-off may list only the options it set.
DEFAULTS = {
    "mlp": {"sizes": [784, 512, 512, 10], "activation": "gelu", "linear": "gemm"},
    "lstm": {"hidden": 256, "inputSize": 128, "seqLen": 8, "layers": 1, "classes": 10},
    "resnet18": {"width": 64, "resolution": 224, "classes": 1000},
    "encoder": {"layers": 4, "hidden": 256, "heads": 4, "ffn": 1024, "seq": 64, "vocabSize": 8192,
                "maxPositions": 512, "pooler": True, "maskValue": "finfo-min"},
}
TOLERANCE = {"fp32": 1e-3, "bf16": 3e-2, "fp16": 1e-2}
ITEMSIZE = {"float32": 4, "int64": 8}
TINY = 1e-30


class PeerError(Exception):
    """A problem with the hand-off (or an option this peer cannot mirror): printed without a traceback."""


# ---------------------------------------------------------------- model specs (pure Python, mirror models/zoo)

def normalize_options(kind, options, where):
    if kind not in DEFAULTS:
        raise PeerError(f"{where}: unknown kind '{kind}' (the peer knows {', '.join(KINDS)})")
    if not isinstance(options, dict):
        raise PeerError(f"{where}: 'options' must be an object")
    unknown = sorted(k for k in options if k not in DEFAULTS[kind] and k not in COMMON_OPTIONS)
    if unknown:
        raise PeerError(f"{where}: {kind} option(s) {', '.join(unknown)} are not mirrored by the torch peer")
    o = dict(DEFAULTS[kind])
    o.update({k: v for k, v in options.items() if k in DEFAULTS[kind]})
    ints = {"mlp": [], "lstm": ["hidden", "inputSize", "seqLen", "layers", "classes"],
            "resnet18": ["width", "resolution", "classes"],
            "encoder": ["layers", "hidden", "heads", "ffn", "seq", "vocabSize", "maxPositions"]}[kind]
    for k in ints:
        if not isinstance(o[k], int) or isinstance(o[k], bool) or o[k] < 1:
            raise PeerError(f"{where}: {kind} option '{k}' must be a positive integer, got {o[k]!r}")
    if kind == "mlp":
        s = o["sizes"]
        if not isinstance(s, list) or len(s) < 2 or not all(isinstance(v, int) and v > 0 for v in s):
            raise PeerError(f"{where}: mlp option 'sizes' must list at least 2 positive widths, got {s!r}")
        if o["activation"] not in ("gelu", "relu") or o["linear"] not in ("gemm", "matmul"):
            raise PeerError(f"{where}: mlp activation/linear '{o['activation']}'/'{o['linear']}' unknown")
    if kind == "encoder":
        if o["hidden"] % o["heads"] != 0:
            raise PeerError(f"{where}: encoder hidden {o['hidden']} is not divisible by heads {o['heads']}")
        if o["seq"] > o["maxPositions"]:
            raise PeerError(f"{where}: encoder seq {o['seq']} exceeds maxPositions {o['maxPositions']}")
        if o["maskValue"] not in ("finfo-min", "minus-10000"):
            raise PeerError(f"{where}: encoder maskValue '{o['maskValue']}' unknown")
    return o


def _init(name, shape, targets, optional=False):
    # targets: [(torch state_dict name, transform name)]; optional ones keep the module's default when absent
    return {"name": name, "shape": list(shape), "targets": targets, "optional": optional}


def _linear(path, fin, fout, matmul=False):
    # Gemm(transB=1) stores nn.Linear's [out, in]; MatMul stores it pre-transposed [in, out] (layers.ts)
    w = (_init(f"onnx::MatMul_{path}", [fin, fout], [(f"{path}.weight", "T")]) if matmul
         else _init(f"{path}.weight", [fout, fin], [(f"{path}.weight", "id")]))
    return [w, _init(f"{path}.bias", [fout], [(f"{path}.bias", "id")])]


def _bn(path, c):
    return [_init(f"{path}.{p}", [c], [(f"{path}.{p}", "id")]) for p in ("weight", "bias", "running_mean", "running_var")]


def _layernorm(path, c):
    return [_init(f"{path}.{p}", [c], [(f"{path}.{p}", "id")]) for p in ("weight", "bias")]


def initializer_spec(kind, o):
    """Every ONNX initializer the zoo writes for (kind, options), and where it goes in the torch module."""
    if kind == "mlp":
        s = o["sizes"]
        return [i for k in range(len(s) - 1) for i in _linear(f"layers.{2 * k}", s[k], s[k + 1], o["linear"] == "matmul")]
    if kind == "lstm":
        H, out = o["hidden"], []
        for l in range(o["layers"]):
            fin = o["inputSize"] if l == 0 else H
            out += [_init(f"onnx::LSTM_W_l{l}", [1, 4 * H, fin], [(f"rnn.weight_ih_l{l}", "lstm_w")]),
                    _init(f"onnx::LSTM_R_l{l}", [1, 4 * H, H], [(f"rnn.weight_hh_l{l}", "lstm_w")]),
                    _init(f"onnx::LSTM_B_l{l}", [1, 8 * H], [(f"rnn.bias_ih_l{l}", "lstm_bw"), (f"rnn.bias_hh_l{l}", "lstm_br")])]
        return out + _linear("fc", H, o["classes"])
    if kind == "resnet18":
        w = o["width"]
        out = [_init("conv1.weight", [w, 3, 7, 7], [("conv1.weight", "id")])] + _bn("bn1", w)
        cin = w
        for stage in range(4):
            cout = w << stage
            for b in range(2):
                p = f"layer{stage + 1}.{b}"
                out += [_init(f"{p}.conv1.weight", [cout, cin, 3, 3], [(f"{p}.conv1.weight", "id")])] + _bn(f"{p}.bn1", cout)
                out += [_init(f"{p}.conv2.weight", [cout, cout, 3, 3], [(f"{p}.conv2.weight", "id")])] + _bn(f"{p}.bn2", cout)
                if (stage > 0 and b == 0) or cin != cout:
                    out += [_init(f"{p}.downsample.0.weight", [cout, cin, 1, 1], [(f"{p}.downsample.0.weight", "id")])]
                    out += _bn(f"{p}.downsample.1", cout)
                cin = cout
        return out + _linear("fc", cin, o["classes"])
    if kind == "encoder":
        H, F, S = o["hidden"], o["ffn"], o["seq"]
        out = [_init(f"embeddings.{t}.weight", [rows, H], [(f"embeddings.{t}.weight", "id")])
               for t, rows in (("word_embeddings", o["vocabSize"]), ("token_type_embeddings", 2),
                               ("position_embeddings", o["maxPositions"]))]
        # static seq folds the id buffers to [1, S] i64 constants; a peer that does not get them uses arange / 0
        out += [_init("/embeddings/position_ids_folded", [1, S], [("embeddings.position_ids", "id")], optional=True),
                _init("/embeddings/token_type_ids_folded", [1, S], [("embeddings.token_type_ids", "id")], optional=True)]
        out += _layernorm("embeddings.LayerNorm", H)
        for l in range(o["layers"]):
            p = f"encoder.layer.{l}"
            for qkv in ("query", "key", "value"):
                out += _linear(f"{p}.attention.self.{qkv}", H, H, matmul=True)
            out += _linear(f"{p}.attention.output.dense", H, H, matmul=True) + _layernorm(f"{p}.attention.output.LayerNorm", H)
            out += _linear(f"{p}.intermediate.dense", H, F, matmul=True)
            out += _linear(f"{p}.output.dense", F, H, matmul=True) + _layernorm(f"{p}.output.LayerNorm", H)
        return out + (_linear("pooler.dense", H, H) if o["pooler"] else [])
    raise PeerError(f"unknown kind '{kind}'")


def io_spec(kind, o, batch):
    """(inputs [(name, dtype, shape)], outputs [(name, shape)]) in the order the model lists them."""
    if kind == "mlp":
        return [("input", "float32", [batch, o["sizes"][0]])], [("output", [batch, o["sizes"][-1]])]
    if kind == "lstm":
        return [("input", "float32", [o["seqLen"], batch, o["inputSize"]])], [("output", [batch, o["classes"]])]
    if kind == "resnet18":
        r = o["resolution"]
        return [("input", "float32", [batch, 3, r, r])], [("output", [batch, o["classes"]])]
    if kind == "encoder":
        ins = [("input_ids", "int64", [batch, o["seq"]]), ("attention_mask", "int64", [batch, o["seq"]])]
        outs = [("last_hidden_state", [batch, o["seq"], o["hidden"]])]
        return ins, outs + ([("pooler_output", [batch, o["hidden"]])] if o["pooler"] else [])
    raise PeerError(f"unknown kind '{kind}'")


def arch_key(t):
    """Tenants with equal keys can be stacked for vmap."""
    return json.dumps([t["kind"], t["opts"], t["batch"]], sort_keys=True)


# ---------------------------------------------------------------- hand-off parsing and validation

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


# ---------------------------------------------------------------- arrays (numpy) and stats

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


def percentile(xs, q):
    """Linear interpolation between closest ranks (numpy's default), pure Python."""
    s = sorted(xs)
    if not s:
        raise ValueError("percentile of no samples")
    pos = (len(s) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def tick_stats(us, semantics):
    return {"p50_us": percentile(us, 50), "p99_us": percentile(us, 99), "mean_us": sum(us) / len(us),
            "min_us": min(us), "iters": len(us), "semantics": semantics}


def json_safe(v):
    """NaN/inf are not JSON that Node can parse: they become null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    return v


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def log(msg):
    print(f"fleet_torch: {msg}", file=sys.stderr, flush=True)



# ---------------------------------------------------------------- torch modules, named as the ONNX initializers

_Module = nn.Module if nn is not None else object


class MlpNet(_Module):
    def __init__(self, o, **kw):
        super().__init__()
        s, layers = o["sizes"], []
        for k in range(len(s) - 1):
            layers.append(nn.Linear(s[k], s[k + 1], **kw))
            if k < len(s) - 2:  # exact-erf GELU: the zoo's Div/Erf/Add/Mul/Mul pattern
                layers.append(nn.GELU() if o["activation"] == "gelu" else nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return (self.layers(x),)


class LstmNet(_Module):
    """nn.LSTM (layout [seq, batch, input], zero initial state) + nn.Linear on the last layer's h_n."""

    def __init__(self, o, **kw):
        super().__init__()
        self.rnn = nn.LSTM(o["inputSize"], o["hidden"], num_layers=o["layers"], **kw)
        self.fc = nn.Linear(o["hidden"], o["classes"], **kw)
        self.cell = False  # True: the same step in plain torch ops (vmap cannot batch cuDNN's fused LSTM)

    def forward(self, x):
        if not self.cell:
            _, (h, _) = self.rnn(x)
            return (self.fc(h[-1]),)
        seq = x
        for l in range(self.rnn.num_layers):
            w_ih, w_hh = getattr(self.rnn, f"weight_ih_l{l}"), getattr(self.rnn, f"weight_hh_l{l}")
            b_ih, b_hh = getattr(self.rnn, f"bias_ih_l{l}"), getattr(self.rnn, f"bias_hh_l{l}")
            h = seq.new_zeros(seq.shape[1], w_hh.shape[1])
            c, ys = h, []
            for step in range(seq.shape[0]):
                i, f, g, o = (F.linear(seq[step], w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                ys.append(h)
            seq = torch.stack(ys)
        return (self.fc(h),)


class BasicBlock(_Module):
    def __init__(self, cin, cout, stride, **kw):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False, **kw)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, **kw)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False, **kw)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, **kw)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False, **kw), nn.BatchNorm2d(cout, eps=1e-5, **kw))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(_Module):
    """torchvision's resnet18 layout (eval-mode BatchNorm, no Conv+BN folding), width/classes from options."""

    def __init__(self, o, **kw):
        super().__init__()
        w = o["width"]
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False, **kw)
        self.bn1 = nn.BatchNorm2d(w, eps=1e-5, **kw)
        cin = w
        for stage in range(4):
            cout = w << stage
            blocks = [BasicBlock(cin if b == 0 else cout, cout, 2 if stage > 0 and b == 0 else 1, **kw) for b in range(2)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
            cin = cout
        self.fc = nn.Linear(cin, o["classes"], **kw)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return (self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)),)


class Embeddings(_Module):
    def __init__(self, o, **kw):
        super().__init__()
        H = o["hidden"]
        self.word_embeddings = nn.Embedding(o["vocabSize"], H, **kw)
        self.token_type_embeddings = nn.Embedding(2, H, **kw)
        self.position_embeddings = nn.Embedding(o["maxPositions"], H, **kw)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-12, **kw)
        # the zoo folds these to [1, seq] constants; loaded when the hand-off carries them
        self.register_buffer("position_ids", torch.arange(o["seq"], device=kw["device"]).unsqueeze(0))
        self.register_buffer("token_type_ids", torch.zeros(1, o["seq"], dtype=torch.long, device=kw["device"]))

    def forward(self, ids):
        x = self.word_embeddings(ids) + self.token_type_embeddings(self.token_type_ids.expand(ids.shape))
        return self.LayerNorm(x + self.position_embeddings(self.position_ids))


class SelfAttention(_Module):
    def __init__(self, o, **kw):
        super().__init__()
        H = o["hidden"]
        self.heads = o["heads"]
        self.query, self.key, self.value = (nn.Linear(H, H, **kw) for _ in range(3))

    def forward(self, x, ext_mask):
        B, S, H = x.shape
        d = H // self.heads

        def split(t):
            return t.reshape(B, S, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + ext_mask
        return torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(B, S, H)


class DenseNorm(_Module):
    """BertSelfOutput / BertOutput: LayerNorm(dense(h) + residual)."""

    def __init__(self, fin, H, **kw):
        super().__init__()
        self.dense = nn.Linear(fin, H, **kw)
        self.LayerNorm = nn.LayerNorm(H, eps=1e-12, **kw)

    def forward(self, h, residual):
        return self.LayerNorm(self.dense(h) + residual)


class EncoderLayer(_Module):
    def __init__(self, o, **kw):
        super().__init__()
        H, Fd = o["hidden"], o["ffn"]
        self.attention = nn.Module()
        self.attention.self = SelfAttention(o, **kw)
        self.attention.output = DenseNorm(H, H, **kw)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(H, Fd, **kw)
        self.output = DenseNorm(Fd, H, **kw)

    def forward(self, x, ext_mask):
        a = self.attention.output(self.attention.self(x, ext_mask), x)
        return self.output(F.gelu(self.intermediate.dense(a)), a)


class EncoderNet(_Module):
    """HF BertModel's eager path: embeddings, additive mask (1 - m) * min, post-LN layers, optional tanh pooler."""

    def __init__(self, o, **kw):
        super().__init__()
        self.embeddings = Embeddings(o, **kw)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(EncoderLayer(o, **kw) for _ in range(o["layers"]))
        self.pooler = None
        if o["pooler"]:
            self.pooler = nn.Module()
            self.pooler.dense = nn.Linear(o["hidden"], o["hidden"], **kw)
        self.finfo_min = o["maskValue"] == "finfo-min"

    def forward(self, ids, mask):
        x = self.embeddings(ids)
        m = mask[:, None, None, :].to(x.dtype)
        ext = (1.0 - m) * (torch.finfo(x.dtype).min if self.finfo_min else -10000.0)
        for layer in self.encoder.layer:
            x = layer(x, ext)
        if self.pooler is None:
            return (x,)
        return x, torch.tanh(self.pooler.dense(x[:, 0]))


MODULES = {"mlp": MlpNet, "lstm": LstmNet, "resnet18": ResNet18, "encoder": EncoderNet}


def build_module(kind, o, device, dtype):
    m = MODULES[kind](o, device=device, dtype=dtype)
    m.eval()
    m.requires_grad_(False)
    return m


def load_module(m, t):
    """Copies the tenant's initializers into `m` by name; every weight of `m` must be set (BN's counter aside)."""
    table = dict(m.named_parameters())
    table.update(m.named_buffers())
    loaded = set()
    with torch.no_grad():
        for name, a in tenant_arrays(t):
            dst = table.get(name)
            if dst is None:
                raise PeerError(f"tenant '{t['id']}': the torch {t['kind']} has no weight '{name}'")
            if list(dst.shape) != list(a.shape):
                raise PeerError(f"tenant '{t['id']}': weight '{name}' is {list(a.shape)} after conversion, torch has {list(dst.shape)}")
            dst.copy_(torch.from_numpy(a))
            loaded.add(name)
    optional = {n for e in initializer_spec(t["kind"], t["opts"]) if e["optional"] for n, _ in e["targets"]}
    unset = [n for n in table if n not in loaded and n not in optional and not n.endswith("num_batches_tracked")]
    if unset:
        raise PeerError(f"tenant '{t['id']}': torch weights {', '.join(unset)} got no initializer")
    if t["kind"] == "lstm":
        m.rnn.flatten_parameters()  # cuDNN wants one contiguous weight buffer, else it copies every call


# ---------------------------------------------------------------- work units and peers

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


def time_ticks(tick, warmup, iters):
    import gc
    for _ in range(warmup):
        tick()
    gc.collect()
    gc.disable()  # a collection inside a tick would be timed as the peer's
    try:
        us = []
        for _ in range(iters):
            t0 = time.perf_counter()
            tick()
            us.append((time.perf_counter() - t0) * 1e6)
    finally:
        gc.enable()
    return us


def measure_peaks(device):
    """Best of a few, timed with CUDA events: the card's ceilings for the roofline floor."""
    def best_s(fn, reps):
        fn()
        fn()
        torch.cuda.synchronize()
        best = math.inf
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            best = min(best, a.elapsed_time(b) / 1e3)
        return best

    n, peaks = 8192, {}
    for key, dt in (("fp32_flops", torch.float32), ("bf16_flops", torch.bfloat16)):
        a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
        c = torch.empty(n, n, device=device, dtype=dt)
        peaks[key] = 2 * n ** 3 / best_s(lambda: torch.mm(a, b, out=c), 5)
        del a, b, c
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    peaks["copy_bytes_per_s"] = 2 * nbytes / best_s(lambda: dst.copy_(src), 10)
    host = torch.empty(nbytes, dtype=torch.uint8).pin_memory()
    peaks["h2d_bytes_per_s"] = nbytes / best_s(lambda: dst.copy_(host, non_blocking=True), 5)
    del src, dst, host
    torch.cuda.empty_cache()
    log("peaks: fp32 {:.1f} TFLOP/s, bf16 {:.1f} TFLOP/s, D2D copy {:.0f} GB/s, pinned H2D {:.1f} GB/s".format(
        peaks["fp32_flops"] / 1e12, peaks["bf16_flops"] / 1e12, peaks["copy_bytes_per_s"] / 1e9, peaks["h2d_bytes_per_s"] / 1e9))
    return peaks


def worst(errs):
    """Largest per-output error of {tenant: [err per output]}; NaN counts as infinitely wrong."""
    return max((e if math.isfinite(e) else math.inf for es in errs.values() for e in es), default=0.0)


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
    # fp32 is true fp32 (no TF32), like Loom's fp32 plans
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    prec = plan["precision"] if plan else "fp32"
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[prec]
    notes = ["tick wall time is time.perf_counter around one tick after warm-up; Python GC disabled while timing",
             "peaks: best of 5 (matmul 8192^3, TF32 off) / 10 (1 GiB D2D copy, 2*bytes/time) / 5 (1 GiB pinned H2D)",
             "torch.backends.cudnn.benchmark = True (algorithm choice happens in warm-up, before any capture)"]
    result = {"format": "loom-peer-result", "version": 1, "fleet": plan["fleet"] if plan else None,
              "device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
              "cpu": cpu_name(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "precision": prec, "iters": args.iters, "warmup": args.warmup, "peaks": None,
              "check": {}, "maxRelErr": None, "peers": {}, "notes": notes}
    WHERE.update(peer="peaks", tenant=None)
    if not args.skip_peaks:
        result["peaks"] = measure_peaks(device)
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


# ---------------------------------------------------------------- self-test (no torch; numpy optional)

SELF_TEST_TENANTS = [
    ("mlp-0", "mlp", {"sizes": [8, 6, 3], "activation": "relu", "linear": "matmul", "seed": 1}, 2),
    ("lstm-0", "lstm", {"hidden": 4, "inputSize": 3, "seqLen": 2, "layers": 2, "classes": 2, "seed": 2}, 1),
    ("resnet18-0", "resnet18", {"width": 2, "resolution": 16, "classes": 5, "seed": 3}, 1),
    ("encoder-0", "encoder", {"layers": 1, "hidden": 8, "heads": 2, "ffn": 16, "seq": 4, "vocabSize": 11,
                              "maxPositions": 6, "seed": 4}, 2),
]


def write_fixture(root, tenants=SELF_TEST_TENANTS):
    """A hand-off as the Node side writes it, with made-up numbers: weights[i] = i / 1000 per tensor (so a
    transposition or gate reorder is visible), id buffers as int64, random-free."""
    import array
    os.makedirs(os.path.join(root, "weights"), exist_ok=True)
    os.makedirs(os.path.join(root, "io"), exist_ok=True)
    doc = {"format": "loom-peer-fleet", "version": 1, "fleet": "selftest", "precision": "fp32", "tenants": []}
    for tid, kind, options, batch in tenants:
        o = normalize_options(kind, options, tid)
        entries, off = [], 0
        with open(os.path.join(root, "weights", f"{tid}.bin"), "wb") as f:
            for i in initializer_spec(kind, o):
                n = _numel(i["shape"])
                buf = array.array("q", range(n)) if i["optional"] else array.array("f", (v / 1000 for v in range(n)))
                buf.tofile(f)
                entries.append({"name": i["name"], "shape": i["shape"], "offset": off, "bytes": n * buf.itemsize})
                off += n * buf.itemsize
        ins, outs = io_spec(kind, o, batch)
        io = {"inputs": [], "outputs": []}
        for k, (name, dt, shape) in enumerate(ins):
            rel = f"io/{tid}.in{k}.bin"
            with open(os.path.join(root, rel), "wb") as f:
                (array.array("q", (v % 3 for v in range(_numel(shape)))) if dt == "int64"
                 else array.array("f", (0.5 for _ in range(_numel(shape))))).tofile(f)
            io["inputs"].append({"name": name, "dtype": dt, "shape": shape, "file": rel})
        for k, (name, shape) in enumerate(outs):
            rel = f"io/{tid}.out{k}.bin"
            with open(os.path.join(root, rel), "wb") as f:
                array.array("f", (0.25 for _ in range(_numel(shape)))).tofile(f)
            io["outputs"].append({"name": name, "dtype": "float32", "shape": shape, "file": rel})
        doc["tenants"].append({"id": tid, "kind": kind, "options": options, "batch": batch,
                               "weights": {"file": f"weights/{tid}.bin", "tensors": entries}, **io})
    with open(os.path.join(root, "fleet.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return doc


def self_test(keep):
    import copy
    import shutil
    import tempfile
    fails = []

    def expect(ok, what):
        if not ok:
            fails.append(what)
            print(f"FAIL {what}")

    def expect_error(fn, needle, what):
        try:
            fn()
            expect(False, f"{what}: no error raised")
        except PeerError as e:
            expect(needle in str(e), f"{what}: message '{e}' does not contain '{needle}'")

    def learned(kind, options):
        spec = initializer_spec(kind, normalize_options(kind, options, "t"))
        return sum(_numel(i["shape"]) for i in spec if not i["optional"] and "running_" not in i["name"])

    # the zoo's paramCount (models/zoo, learned weights only) for the fleet table's models
    expect(learned("mlp", {}) == 669706, f"mlp params {learned('mlp', {})}")
    lstm_opts = {"hidden": 1024, "inputSize": 1024, "seqLen": 1, "layers": 1, "classes": 10}
    expect(learned("lstm", lstm_opts) == 8407050, f"lstm params {learned('lstm', lstm_opts)}")
    expect(learned("resnet18", {}) == 11689512, f"resnet18 params {learned('resnet18', {})}")
    expect(learned("encoder", {"seq": 64}) == 5454080, f"encoder params {learned('encoder', {'seq': 64})}")
    expect_error(lambda: normalize_options("mlp", {"hidden": 3}, "t"), "option(s) hidden", "unknown option")
    expect_error(lambda: normalize_options("gru", {}, "t"), "unknown kind 'gru'", "unknown kind")
    expect_error(lambda: normalize_options("encoder", {"hidden": 10, "heads": 4}, "t"), "divisible", "heads")

    expect(percentile(list(range(1, 101)), 50) == 50.5, "p50")
    expect(abs(percentile(list(range(1, 101)), 99) - 99.01) < 1e-9, "p99")
    expect(percentile([7.0], 99) == 7.0, "p99 of one")
    expect(json_safe({"a": [math.nan, 1.0, math.inf]}) == {"a": [None, 1.0, None]}, "json_safe")

    root = keep or tempfile.mkdtemp(prefix="fleet-torch-selftest-")
    try:
        doc = write_fixture(root)
        path = os.path.join(root, "fleet.json")
        plan = parse_fleet(path)
        expect([t["id"] for t in plan["tenants"]] == [t[0] for t in SELF_TEST_TENANTS], "tenant ids")
        enc = plan["tenants"][3]
        expect([i["name"] for i in enc["inputs"]] == ["input_ids", "attention_mask"], "encoder input order")
        expect([e["dtype"] for e in enc["tensors"][3:5]] == ["int64", "int64"], "id buffers read as int64")

        def broken(mutate, needle, what):
            d = copy.deepcopy(doc)
            mutate(d)
            bad = os.path.join(root, "broken.json")
            with open(bad, "w") as f:
                json.dump(d, f)
            expect_error(lambda: parse_fleet(bad), needle, what)
            os.remove(bad)

        broken(lambda d: d["tenants"][0]["weights"]["tensors"].pop(1), "missing initializer(s) layers.0.bias", "missing init")
        broken(lambda d: d["tenants"][0]["weights"]["tensors"].append(dict(d["tenants"][0]["weights"]["tensors"][0], name="bogus")),
               "unexpected initializer(s) bogus", "extra init")
        broken(lambda d: d["tenants"][1]["weights"]["tensors"][0].update(shape=[1, 16, 4]), "expected [1, 16, 3]", "init shape")
        broken(lambda d: d["tenants"][1]["weights"]["tensors"][0].update(offset=10 ** 9), "outside", "init offset")
        broken(lambda d: d["tenants"][2]["weights"].update(file="weights/nope.bin"), "nope.bin' does not exist", "weights file")
        broken(lambda d: d["tenants"][2]["inputs"][0].update(shape=[1, 3, 8, 8]), "the model's is [1, 3, 16, 16]", "input shape")
        broken(lambda d: d["tenants"][3]["outputs"].pop(), "outputs are ['last_hidden_state']", "output names")
        broken(lambda d: d["tenants"][3]["options"].update(pooler=False), "unexpected initializer(s) pooler.dense.weight", "pooler off")
        broken(lambda d: d["tenants"][1].update(id="mlp-0"), "repeated 'id'", "duplicate id")
        broken(lambda d: d.update(precision="int8"), "precision 'int8' unknown", "precision")
        expect_error(lambda: parse_fleet(os.path.join(root, "absent.json")), "absent.json' does not exist", "fleet file")

        if np is None:
            print("self-test: numpy is not installed, array loading is not tested")
        else:
            mlp = dict(tenant_arrays(plan["tenants"][0]))
            w = mlp["layers.0.weight"]
            expect(w.shape == (6, 8) and w[0, 1] == np.float32(6 / 1000) and w[1, 0] == np.float32(1 / 1000) and w.flags["C_CONTIGUOUS"], "MatMul weight -> [out, in]")
            lstm = dict(tenant_arrays(plan["tenants"][1]))
            H, I = 4, 3
            raw = (np.arange(4 * H * I, dtype=np.float32) / 1000).reshape(4 * H, I)
            order = [0, 2, 3, 1]  # torch i, f, g, o from ONNX i, o, f, c
            expect(np.array_equal(lstm["rnn.weight_ih_l0"], np.concatenate([raw[k * H:(k + 1) * H] for k in order])), "LSTM W gates")
            b = np.arange(8 * H, dtype=np.float32) / 1000
            expect(np.array_equal(lstm["rnn.bias_hh_l1"], np.concatenate([b[4 * H + k * H:4 * H + (k + 1) * H] for k in order])), "LSTM Rb gates")
            expect(lstm["rnn.weight_hh_l1"].shape == (16, 4) and lstm["fc.weight"].shape == (2, 4), "LSTM shapes")
            enc_arrays = dict(tenant_arrays(enc))
            expect(enc_arrays["embeddings.position_ids"].dtype == np.int64 and enc_arrays["embeddings.position_ids"].tolist() == [[0, 1, 2, 3]], "position ids")
            expect(read_array(enc["inputs"][0]["path"], "int64", [2, 4]).tolist() == [[0, 1, 2, 0], [1, 2, 0, 1]], "int64 input")
            expect(rel_err([1.0, 2.0], [1.0, 2.0]) == 0.0 and rel_err([0.0], [0.0]) == 0.0, "rel_err equal")
            expect(abs(rel_err([3.0, 4.0], [0.0, 0.0]) - 5 / TINY) < 1e-9 * 5 / TINY, "rel_err against zeros")
            expect(rel_err([math.nan], [1.0]) == math.inf, "rel_err NaN")
            expect(abs(rel_err([1.0, 1.0], [1.0, 2.0]) - 1 / math.sqrt(5)) < 1e-12, "rel_err value")
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"self-test: {'FAILED ' + str(len(fails)) if fails else 'ok'}" + (f"; fixture kept in {root}" if keep else ""))
    return 1 if fails else 0


def parse_args(argv):
    ap = argparse.ArgumentParser(description="PyTorch peer for Loom's fleet table: same weights, five ways to run a fleet.")
    ap.add_argument("--fleet", help="the hand-off's fleet.json (<work>/<fleet>/peer/fleet.json)")
    ap.add_argument("--out", help="result JSON to write (format loom-peer-result)")
    ap.add_argument("--iters", type=int, default=200, help="timed ticks per peer (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed ticks before timing (default 20)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--peaks-only", action="store_true", help="only measure the card's peaks (no --fleet needed)")
    ap.add_argument("--skip-peaks", action="store_true", help="do not measure peaks (peaks: null)")
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


if __name__ == "__main__":
    sys.exit(main())
