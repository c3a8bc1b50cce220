"""--self-test: parsing, validation and loading on a made-up hand-off, without torch (numpy optional)."""
import json
import math
import os

from .check import rel_err
from .deps import np
from .handoff import _numel, parse_fleet, read_array, tenant_arrays
from .run import peer_precision
from .spec import PRECISIONS, TINY, TOLERANCE, PeerError, initializer_spec, io_spec, normalize_options
from .timing import percentile
from .util import json_safe


SELF_TEST_TENANTS = [
    ("mlp-0", "mlp", {"sizes": [8, 6, 3], "activation": "relu", "linear": "matmul", "seed": 1}, 2),
    ("lstm-0", "lstm", {"hidden": 4, "inputSize": 3, "seqLen": 2, "layers": 2, "classes": 2, "seed": 2}, 1),
    ("resnet18-0", "resnet18", {"width": 2, "resolution": 16, "classes": 5, "seed": 3}, 1),
    ("encoder-0", "encoder", {"layers": 1, "hidden": 8, "heads": 2, "ffn": 16, "seq": 4, "vocabSize": 11,
                              "maxPositions": 6, "seed": 4}, 2),
    ("mobilenet-0", "mobilenet", {"resolution": 32, "classes": 3, "widthMult": 0.25, "seed": 5}, 1),
    ("squeezenet-0", "squeezenet", {"resolution": 32, "classes": 3, "seed": 6}, 1),
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
    # torchvision's parameter counts of mobilenet_v3_small and squeezenet1_1 (1000 classes, width 1)
    expect(learned("mobilenet", {}) == 2542856, f"mobilenet params {learned('mobilenet', {})}")
    expect(learned("squeezenet", {}) == 1235496, f"squeezenet params {learned('squeezenet', {})}")
    expect_error(lambda: normalize_options("mobilenet", {"widthMult": 0}, "t"), "widthMult", "mobilenet width")
    expect_error(lambda: normalize_options("squeezenet", {"headPool": "max"}, "t"), "headPool 'max'", "squeezenet head")
    expect_error(lambda: normalize_options("mlp", {"hidden": 3}, "t"), "option(s) hidden", "unknown option")
    expect_error(lambda: normalize_options("gru", {}, "t"), "unknown kind 'gru'", "unknown kind")
    expect_error(lambda: normalize_options("encoder", {"hidden": 10, "heads": 4}, "t"), "divisible", "heads")

    # the precision: --precision parsed, the hand-off's by default, a contradiction refused
    from .cli import parse_args  # cli imports this module
    for prec in PRECISIONS:
        args = parse_args(["--fleet", "f.json", "--out", "o.json", "--precision", prec])
        expect(args.precision == prec, f"--precision {prec} parsed as {args.precision!r}")
    expect(parse_args(["--fleet", "f.json", "--out", "o.json"]).precision is None, "--precision defaults to the hand-off's")
    expect(peer_precision(None, {"precision": "tf32"}) == "tf32", "hand-off precision")
    expect(peer_precision("bf16", {"precision": "bf16"}) == "bf16", "matching --precision")
    expect(peer_precision("tf32", None) == "tf32" and peer_precision(None, None) == "fp32", "--peaks-only precision")
    expect_error(lambda: peer_precision("tf32", {"precision": "fp32"}), "written for Loom at fp32", "contradicting --precision")
    expect(TOLERANCE["tf32"] >= TOLERANCE["fp32"] and set(PRECISIONS) == {"fp32", "tf32", "bf16", "fp16"}, "precisions")

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
