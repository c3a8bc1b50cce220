"""What the peer expects of each zoo kind (pure Python, mirrors models/zoo): the peers and kinds, option
defaults and checks, every ONNX initializer a (kind, options) has and where it goes in the torch module, and the
model's inputs and outputs."""
import json
import math


PEERS = ["eager", "streams", "graph", "vmap", "vmap_graph"]
KINDS = ["mlp", "lstm", "resnet18", "encoder", "mobilenet", "squeezenet"]
# Options every zoo kind accepts that do not change the graph the peer builds (batch comes from the tenant).
COMMON_OPTIONS = {"seed", "name", "batch"}
# Zoo defaults (models/zoo/*.ts): the hand-off may list only the options it set.
DEFAULTS = {
    "mlp": {"sizes": [784, 512, 512, 10], "activation": "gelu", "linear": "gemm"},
    "lstm": {"hidden": 256, "inputSize": 128, "seqLen": 8, "layers": 1, "classes": 10},
    "resnet18": {"width": 64, "resolution": 224, "classes": 1000},
    "encoder": {"layers": 4, "hidden": 256, "heads": 4, "ffn": 1024, "seq": 64, "vocabSize": 8192,
                "maxPositions": 512, "pooler": True, "maskValue": "finfo-min"},
    "mobilenet": {"resolution": 224, "classes": 1000, "widthMult": 1.0},
    "squeezenet": {"resolution": 224, "classes": 1000, "headPool": "global"},
}
# Worst norm-wise relative error against Loom's outputs before the peer counts as a different model: fp32 is
# true fp32 on both sides; tf32 rounds GEMM/conv operands to 10 mantissa bits (torch allow_tf32); bf16/fp16 run
# the whole module in that dtype.
TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2, "bf16": 3e-2, "fp16": 1e-2}
PRECISIONS = list(TOLERANCE)
ITEMSIZE = {"float32": 4, "int64": 8}
TINY = 1e-30


class PeerError(Exception):
    """A problem with the hand-off (or an option this peer cannot mirror): printed without a traceback."""



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
            "encoder": ["layers", "hidden", "heads", "ffn", "seq", "vocabSize", "maxPositions"],
            "mobilenet": ["resolution", "classes"], "squeezenet": ["resolution", "classes"]}[kind]
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
    if kind == "mobilenet":
        wm = o["widthMult"]
        if isinstance(wm, bool) or not isinstance(wm, (int, float)) or not 0 < wm <= 4:
            raise PeerError(f"{where}: mobilenet option 'widthMult' must be in (0, 4], got {wm!r}")
    if kind == "squeezenet" and o["headPool"] not in ("global", "average"):
        raise PeerError(f"{where}: squeezenet headPool '{o['headPool']}' unknown")
    return o


# torchvision mobilenet_v3_small's bneck table (models/zoo/mobilenet.ts): kernel, expanded, out, SE, act, stride.
MOBILENET_SMALL = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
                   (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
                   (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1), (5, 288, 96, True, "HS", 2),
                   (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]


def make_divisible(v):
    """torchvision's _make_divisible(v, 8) as the zoo computes it."""
    n = max(8, int(math.floor((v + 4) / 8)) * 8)
    return n + 8 if n < 0.9 * v else n


def mobilenet_layout(o):
    """The blocks as built: (stem channels, [dict(k, cin, exp, out, se, squeeze, act, stride, expand, residual)],
    last conv channels, classifier hidden width)."""
    wm = o["widthMult"]
    stem = make_divisible(16 * wm)
    cin, blocks = stem, []
    for k, e, out, se, act, stride in MOBILENET_SMALL:
        exp, out = make_divisible(e * wm), make_divisible(out * wm)
        blocks.append({"k": k, "cin": cin, "exp": exp, "out": out, "se": se, "squeeze": make_divisible(exp / 4),
                       "act": act, "stride": stride, "expand": exp != cin, "residual": stride == 1 and cin == out})
        cin = out
    return stem, blocks, 6 * cin, make_divisible(1024 * wm)


# squeezenet1_1's features (models/zoo/squeezenet.ts): index -> Fire (squeeze, expand1x1, expand3x3) or "pool".
SQUEEZENET_FEATURES = {3: (16, 64, 64), 4: (16, 64, 64), 5: "pool", 6: (32, 128, 128), 7: (32, 128, 128), 8: "pool",
                       9: (48, 192, 192), 10: (48, 192, 192), 11: (64, 256, 256), 12: (64, 256, 256)}


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


def _conv(path, cin, cout, k, groups=1, bias=False):
    w = [_init(f"{path}.weight", [cout, cin // groups, k, k], [(f"{path}.weight", "id")])]
    return w + ([_init(f"{path}.bias", [cout], [(f"{path}.bias", "id")])] if bias else [])


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
    if kind == "mobilenet":
        stem, blocks, last_conv, hidden = mobilenet_layout(o)
        out = _conv("features.0.0", 3, stem, 3) + _bn("features.0.1", stem)
        for i, b in enumerate(blocks):
            p, j = f"features.{i + 1}.block", 0
            if b["expand"]:
                out += _conv(f"{p}.{j}.0", b["cin"], b["exp"], 1) + _bn(f"{p}.{j}.1", b["exp"])
                j += 1
            out += _conv(f"{p}.{j}.0", b["exp"], b["exp"], b["k"], groups=b["exp"]) + _bn(f"{p}.{j}.1", b["exp"])
            j += 1
            if b["se"]:
                out += _conv(f"{p}.{j}.fc1", b["exp"], b["squeeze"], 1, bias=True) + _conv(f"{p}.{j}.fc2", b["squeeze"], b["exp"], 1, bias=True)
                j += 1
            out += _conv(f"{p}.{j}.0", b["exp"], b["out"], 1) + _bn(f"{p}.{j}.1", b["out"])
        cin = blocks[-1]["out"]
        out += _conv(f"features.{len(blocks) + 1}.0", cin, last_conv, 1) + _bn(f"features.{len(blocks) + 1}.1", last_conv)
        return out + _linear("classifier.0", last_conv, hidden) + _linear("classifier.3", hidden, o["classes"])
    if kind == "squeezenet":
        out, cin = _conv("features.0", 3, 64, 3, bias=True), 64
        for i, f in SQUEEZENET_FEATURES.items():
            if f == "pool":
                continue
            sq, e1, e3 = f
            out += _conv(f"features.{i}.squeeze", cin, sq, 1, bias=True)
            out += _conv(f"features.{i}.expand1x1", sq, e1, 1, bias=True) + _conv(f"features.{i}.expand3x3", sq, e3, 3, bias=True)
            cin = e1 + e3
        return out + _conv("classifier.1", cin, o["classes"], 1, bias=True)
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
    if kind in ("mobilenet", "squeezenet"):
        r = o["resolution"]
        return [("input", "float32", [batch, 3, r, r])], [("output", [batch, o["classes"]])]
    raise PeerError(f"unknown kind '{kind}'")


def arch_key(t):
    """Tenants with equal keys can be stacked for vmap."""
    return json.dumps([t["kind"], t["opts"], t["batch"]], sort_keys=True)
