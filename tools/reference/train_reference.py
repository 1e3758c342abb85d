#!/usr/bin/env python3
"""Independent PyTorch check of nst's training loss and its gradient (nets/training.cpp).

The engine writes the inputs and its numbers (tests/test_training.cpp, hidden
test "[.reference]"), on the GPU when there is one:

    NST_TRAIN_REF_OUT=/tmp/tref build/tests/test_training "[.reference]"
    python3 tools/reference/train_reference.py /tmp/tref

DIR holds vgg19.safetensors (VGG-19, torchvision keys), network.safetensors
(a native transformation network, every tensor random), inputs.safetensors
(photos 0..255, style 0..1), config.json (layers, weights, pooling) and
engine.safetensors (loss_content, loss_style, loss_tv, loss_total of one
training step, and grad.<name>: the total loss's gradient with respect to each
network parameter).

This script rebuilds the network and the loss from their definitions, not
from the engine's code: the native network (reflect padding, instance norm
with affine parameters, ReLU, residual blocks, nearest 2x upsampling + conv,
linear output on 0..255), VGG-19 from gatys_reference.py, and the loss of
nets/training.hpp (per-layer division by the target's mean square, the
content normalizer from the photos' own features, Gram / CHW per image, TV as
a mean). It computes in float64 by default, so its numbers are the truth the
engine's float32 is measured against: every loss, the whole gradient and
each parameter's gradient within 1e-4 relative (L2; a gradient that is zero
in exact arithmetic, such as a bias right before an instance norm, relative
to the whole gradient's norm). Two cases: average pooling, and max pooling,
whose gradient jumps at ties (see nearest_tie; the engine's inputs avoid a
flip on the CPU). Exit status 1 if any check fails.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gatys_reference import Vgg, f32, read_safetensors, relative, run_cases, vgg_layers  # noqa: E402

TOLERANCE = 1e-4


class NativeTransformer:
    """The network of nets/transformer.hpp, variant "native", value range 255."""

    def __init__(self, tensors, eps=1e-5):
        self.t, self.eps = tensors, eps
        self.blocks = 0
        while f"res{self.blocks + 1}.conv1.weight" in tensors:
            self.blocks += 1

    def layer(self, name, x, stride=1, upsample=False):
        w = self.t[f"{name}.weight"]
        if upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        p = w.shape[-1] // 2
        x = F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, self.t.get(f"{name}.bias"), stride=stride)
        if f"{name}.norm.weight" in self.t:
            x = F.instance_norm(x, weight=self.t[f"{name}.norm.weight"], bias=self.t[f"{name}.norm.bias"],
                                eps=self.eps)
        return x

    def __call__(self, x):
        h = F.relu(self.layer("conv_in", x))
        h = F.relu(self.layer("down1", h, stride=2))
        h = F.relu(self.layer("down2", h, stride=2))
        for i in range(1, self.blocks + 1):
            h = h + self.layer(f"res{i}.conv2", F.relu(self.layer(f"res{i}.conv1", h)))
        h = F.relu(self.layer("up1", h, upsample=True))
        h = F.relu(self.layer("up2", h, upsample=True))
        return self.layer("conv_out", h)[:, :, : x.shape[2], : x.shape[3]]


def gram(f):
    n, c, h, w = f.shape
    m = f.reshape(n, c, h * w)
    return m @ m.transpose(1, 2) / (c * h * w)


def factor(target):
    ms = float((target * target).mean())
    return 1.0 / ms if ms > 0 else 1.0


def losses(vgg, config, y, photos, style):
    """y, photos: [N, 3, H, W] 0..1; style [1, 3, h, w] 0..1."""
    cw, sw, tw = f32(config["content_weight"]), f32(config["style_weight"]), f32(config["tv_weight"])
    content_layers = [(n, f32(w)) for n, w in config["content_layers"] if f32(w) > 0 and cw > 0]
    style_layers = [(n, f32(w)) for n, w in config["style_layers"] if f32(w) > 0 and sw > 0]
    def features(x, layers):
        return vgg.features(x, {n for n, _ in layers}) if layers else {}

    with torch.no_grad():
        targets = features(photos, content_layers)
        style_grams = {n: gram(f) for n, f in features(style, style_layers).items()}
    f = features(y, content_layers + style_layers)
    zero = y.new_zeros(())
    content = sum((w * factor(targets[n]) * F.mse_loss(f[n], targets[n]) for n, w in content_layers), zero)
    style = sum((w * factor(style_grams[n]) * F.mse_loss(gram(f[n]), style_grams[n].expand(y.shape[0], -1, -1))
                 for n, w in style_layers), zero)
    dh = y[:, :, 1:, :] - y[:, :, :-1, :]
    dw = y[:, :, :, 1:] - y[:, :, :, :-1]
    tv = ((dh * dh).sum() + (dw * dw).sum()) / y.numel()
    content, style, tv = cw * content, sw * style, tw * tv
    return {"content": content, "style": style, "tv": tv, "total": content + style + tv}


def nearest_tie(vgg, y, layers):
    """The smallest gap between the two largest values of a max-pooling window
    (relative to the largest, over windows whose largest is positive) in the
    forward pass of y. Where it is below float32's rounding, the engine may
    pick the other value, and that window's gradient goes to another pixel:
    max pooling's gradient is discontinuous there, so no implementation is
    wrong, but one such window moves the whole gradient by about 1e-3."""
    gaps = []
    deepest = max(i for i, l in enumerate(vgg_layers()) if l[0] in {n for n, _ in layers})
    previous = None
    for name, kind, _ in vgg_layers()[: deepest + 1]:
        if kind == "pool" and previous is not None:
            x = vgg.features(y, {previous})[previous]
            n, c, h, w = x.shape
            win = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
            win = win.permute(0, 1, 2, 4, 3, 5).reshape(-1, 4)
            top = win.topk(2, dim=1).values
            positive = top[:, 0] > 0
            if positive.any():
                gaps.append(float(((top[:, 0] - top[:, 1]) / top[:, 0])[positive].min()))
        previous = name
    return min(gaps) if gaps else float("inf")


def check_case(case_dir, vgg_weights, device, dtype):
    with open(os.path.join(case_dir, "config.json")) as f:
        config = json.load(f)
    vgg = Vgg(vgg_weights, config["flavor"], config["pooling"])
    params = read_safetensors(os.path.join(case_dir, "network.safetensors"), dtype, device)
    for t in params.values():
        t.requires_grad_(True)
    inputs = read_safetensors(os.path.join(case_dir, "inputs.safetensors"), dtype, device)
    engine = read_safetensors(os.path.join(case_dir, "engine.safetensors"), torch.float64, "cpu")

    net = NativeTransformer(params)
    photos = inputs["photos"]
    y = net(photos) / 255.0
    l = losses(vgg, config, y, photos / 255.0, inputs["style"])
    l["total"].backward()

    print(f"{os.path.basename(case_dir)} ({config['pooling']} pooling, engine on {config.get('engine_device', '?')}):")
    ok = True
    if config["pooling"] == "max":
        gap = nearest_tie(vgg, y.detach(), config["content_layers"] + config["style_layers"])
        print(f"  nearest max-pooling tie: relative gap {gap:.3g} (below ~1e-6, float32 rounding may pick "
              f"the other value of that window; if this case alone fails, that is the likely cause)")
    rows = [(f"loss {k}", float(l[k]), relative(engine[f"loss_{k}"], l[k].detach().cpu().reshape(1)), "rel")
            for k in ["content", "style", "tv", "total"]]
    # The whole gradient (every parameter, concatenated), then each tensor.
    # Biases right before an instance norm have no gradient in exact
    # arithmetic (the norm removes them): for those the engine's rounding
    # noise is measured against the whole gradient's norm instead.
    names = sorted(params)
    ref_all = torch.cat([params[n].grad.double().cpu().flatten() for n in names])
    eng_all = torch.cat([engine[f"grad.{n}"].flatten() for n in names])
    whole = float(ref_all.norm())
    rows.append(("gradient, all parameters", whole, relative(eng_all, ref_all), "rel"))
    for n in names:
        ref, eng = params[n].grad.double().cpu(), engine[f"grad.{n}"]
        if float(ref.norm()) > 1e-6 * whole:
            rows.append((f"grad {n}", float(ref.norm()), relative(eng, ref), "rel"))
        else:
            rows.append((f"grad {n} (zero)", float(ref.norm()), float((eng - ref).norm()) / whole, "of all"))
    worst = 0.0
    for name, value, err, unit in rows:
        good = err <= TOLERANCE
        ok &= good
        worst = max(worst, err)
        print(f"  {name:<32} reference {value:12.6g}   {unit:>6} {err:10.3g}  {'ok' if good else 'FAIL'}")
    print(f"  worst relative error {worst:.3g} (need <= {TOLERANCE:g})")
    return ok


def main():
    run_cases(__doc__.split("\n")[0], "test_training", check_case)


if __name__ == "__main__":
    main()
