"""Exports small real-exporter ONNX models with PyTorch (random init, no downloads).

Run on the GPU machine (it has torch, torchvision, transformers, onnx):
    python3 models/torch/export_models.py OUT_DIR
Writes OUT_DIR/<name>.onnx and OUT_DIR/exports.json (producer, path, opset, inputs). The files are
kept in models/torch/onnx/ and used by the oracle tests (test/oracle) against onnxruntime.
"""
import json
import os
import sys
import traceback

import torch
import torch.nn as nn

out_dir = sys.argv[1] if len(sys.argv) > 1 else "out"
os.makedirs(out_dir, exist_ok=True)
torch.manual_seed(0)
results = []


def export(name, model, args, input_names, output_names, dynamic_batch=True, opset=17, dynamo=False, external=False):
    path = os.path.join(out_dir, name + ".onnx")
    model.eval()
    try:
        kw = dict(input_names=input_names, output_names=output_names, opset_version=opset)
        if dynamo:
            kw["dynamo"] = True
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1, max=1024)
                kw["dynamic_shapes"] = tuple({0: batch} for _ in args)
        else:
            kw["dynamo"] = False
            kw["do_constant_folding"] = False  # keep BatchNormalization nodes, as unfused eval exports do
            if dynamic_batch:
                kw["dynamic_axes"] = {n: {0: "batch"} for n in input_names + output_names}
        with torch.no_grad():
            torch.onnx.export(model, args, path, **kw)
        import onnx
        m = onnx.load(path)
        if external:
            onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                            location=name + ".onnx.data", size_threshold=256)
            m = onnx.load(path)
        onnx.checker.check_model(m)
        ops = sorted({n.op_type for n in m.graph.node})
        results.append(dict(name=name, ok=True, file=name + ".onnx", producer=m.producer_name,
                            producer_version=m.producer_version, ir_version=m.ir_version,
                            opset=[(o.domain, o.version) for o in m.opset_import], ops=ops,
                            dynamo=dynamo, external=external,
                            bytes=os.path.getsize(path)))
        print(f"ok   {name}: {os.path.getsize(path)} bytes, ops={ops}")
    except Exception as e:  # report and continue: one failing exporter path must not hide the others
        traceback.print_exc()
        results.append(dict(name=name, ok=False, error=f"{type(e).__name__}: {e}"[:2000]))
        print(f"FAIL {name}: {e}")


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 128), nn.GELU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.f = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU6(),
            nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Hardswish(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return torch.softmax(self.f(x), dim=-1)


class Rnn(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(32, 64, batch_first=True, bidirectional=(cell == "gru"))
        self.head = nn.Linear(64 * (2 if cell == "gru" else 1), 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1, :])


def randomize_bn(model):
    # fresh BatchNorm has mean 0 / var 1: give it real statistics so folding is actually tested
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def main():
    print("torch", torch.__version__)
    export("torch_mlp", Mlp(), (torch.randn(2, 784),), ["x"], ["logits"])
    export("torch_mlp_dynamo", Mlp(), (torch.randn(2, 784),), ["x"], ["logits"], dynamo=True, opset=18)
    export("torch_mlp_fixed1", Mlp(), (torch.randn(1, 784),), ["x"], ["logits"], dynamic_batch=False)
    export("torch_cnn_bn", randomize_bn(SmallCnn()), (torch.randn(2, 3, 32, 32),), ["image"], ["probs"])
    export("torch_cnn_bn_dynamo", randomize_bn(SmallCnn()), (torch.randn(2, 3, 32, 32),), ["image"], ["probs"], dynamo=True, opset=18)
    export("torch_cnn_external", randomize_bn(SmallCnn()), (torch.randn(2, 3, 32, 32),), ["image"], ["probs"], external=True)
    export("torch_lstm", Rnn("lstm"), (torch.randn(2, 7, 32),), ["seq"], ["out"])
    export("torch_gru_bidir", Rnn("gru"), (torch.randn(2, 7, 32),), ["seq"], ["out"])
    try:
        import torchvision
        print("torchvision", torchvision.__version__)
        export("tv_mobilenet_v3_small", randomize_bn(torchvision.models.mobilenet_v3_small(num_classes=10, width_mult=0.5)),
               (torch.randn(1, 3, 96, 96),), ["image"], ["logits"])
        export("tv_squeezenet1_1", torchvision.models.squeezenet1_1(num_classes=10), (torch.randn(1, 3, 64, 64),), ["image"], ["logits"])
        export("tv_resnet_mini_dynamo", randomize_bn(torchvision.models.resnet._resnet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], None, False, num_classes=10)),
               (torch.randn(1, 3, 64, 64),), ["image"], ["logits"], dynamo=True, opset=18)
    except Exception:
        traceback.print_exc()
    try:
        import transformers
        print("transformers", transformers.__version__)
        cfg = transformers.BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      intermediate_size=128, max_position_embeddings=64, attn_implementation="eager")

        class Bert(nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = transformers.BertModel(cfg, add_pooling_layer=True)

            def forward(self, input_ids, attention_mask):
                o = self.bert(input_ids=input_ids, attention_mask=attention_mask)
                return o.last_hidden_state, o.pooler_output

        ids = torch.randint(0, 500, (2, 16))
        mask = torch.ones(2, 16, dtype=torch.int64)
        mask[1, 10:] = 0
        export("hf_bert_tiny", Bert(), (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"])
        export("hf_bert_tiny_dynamo", Bert(), (ids, mask), ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"], dynamo=True, opset=18)
    except Exception:
        traceback.print_exc()
    with open(os.path.join(out_dir, "exports.json"), "w") as f:
        json.dump(dict(torch=torch.__version__, models=results), f, indent=1)


main()
