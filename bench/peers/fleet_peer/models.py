"""The zoo kinds as torch modules whose weights are named as the ONNX initializers, built and loaded per tenant."""
import math

from .deps import F, nn, torch
from .handoff import tenant_arrays
from .spec import SQUEEZENET_FEATURES, PeerError, initializer_spec, mobilenet_layout


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


def _conv_bn(cin, cout, k, stride=1, groups=1, act=None, **kw):
    """torchvision's Conv2dNormActivation as the zoo writes it: .0 Conv (no bias), .1 BatchNorm (eps 1e-5, the
    zoo's; torchvision's MobileNet uses 1e-3), .2 the activation when there is one."""
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False, **kw), nn.BatchNorm2d(cout, eps=1e-5, **kw)]
    return nn.Sequential(*layers, *([act()] if act else []))


class SqueezeExcite(_Module):
    """avgpool -> fc1 (1x1 conv) -> ReLU -> fc2 -> hardsigmoid (ONNX HardSigmoid alpha 1/6, beta 0.5) -> scale."""

    def __init__(self, c, squeeze, **kw):
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1, **kw)
        self.fc2 = nn.Conv2d(squeeze, c, 1, **kw)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class InvertedResidual(_Module):
    def __init__(self, b, **kw):
        super().__init__()
        act = nn.ReLU if b["act"] == "RE" else nn.Hardswish
        layers = [_conv_bn(b["cin"], b["exp"], 1, act=act, **kw)] if b["expand"] else []
        layers.append(_conv_bn(b["exp"], b["exp"], b["k"], b["stride"], groups=b["exp"], act=act, **kw))
        if b["se"]:
            layers.append(SqueezeExcite(b["exp"], b["squeeze"], **kw))
        layers.append(_conv_bn(b["exp"], b["out"], 1, **kw))
        self.block = nn.Sequential(*layers)
        self.residual = b["residual"]

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


class MobileNetV3Small(_Module):
    """torchvision mobilenet_v3_small's layout and names (models/zoo/mobilenet.ts); Dropout is gone in eval."""

    def __init__(self, o, **kw):
        super().__init__()
        stem, blocks, last_conv, hidden = mobilenet_layout(o)
        layers = [_conv_bn(3, stem, 3, 2, act=nn.Hardswish, **kw)] + [InvertedResidual(b, **kw) for b in blocks]
        layers.append(_conv_bn(blocks[-1]["out"], last_conv, 1, act=nn.Hardswish, **kw))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(last_conv, hidden, **kw), nn.Hardswish(), nn.Identity(), nn.Linear(hidden, o["classes"], **kw))

    def forward(self, x):
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return (self.classifier(x),)


class Fire(_Module):
    def __init__(self, cin, sq, e1, e3, **kw):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, sq, 1, **kw)
        self.expand1x1 = nn.Conv2d(sq, e1, 1, **kw)
        self.expand3x3 = nn.Conv2d(sq, e3, 3, padding=1, **kw)

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], 1)


class SqueezeNet11(_Module):
    """torchvision squeezenet1_1's layout and names (models/zoo/squeezenet.ts). The zoo's head is a global
    average pool or an AveragePool over the whole final map: the same numbers either way."""

    def __init__(self, o, **kw):
        super().__init__()
        layers, cin = [nn.Conv2d(3, 64, 3, 2, **kw), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True)], 64
        for i in sorted(SQUEEZENET_FEATURES):
            f = SQUEEZENET_FEATURES[i]
            if f == "pool":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                layers.append(Fire(cin, *f, **kw))
                cin = f[1] + f[2]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Identity(), nn.Conv2d(cin, o["classes"], 1, **kw), nn.ReLU())

    def forward(self, x):
        x = self.classifier(self.features(x))
        return (torch.flatten(F.adaptive_avg_pool2d(x, 1), 1),)


MODULES = {"mlp": MlpNet, "lstm": LstmNet, "resnet18": ResNet18, "encoder": EncoderNet,
           "mobilenet": MobileNetV3Small, "squeezenet": SqueezeNet11}


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
