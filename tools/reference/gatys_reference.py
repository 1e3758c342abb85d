#!/usr/bin/env python3
"""Independent PyTorch check of nst's optimization mode (nets/gatys.cpp).

The engine writes the inputs and its numbers (tests/test_gatys.cpp, hidden
test "[.reference]"), on the GPU when there is one:

    NST_GATYS_REF_OUT=/tmp/gref build/tests/test_gatys "[.reference]"
    python3 tools/reference/gatys_reference.py /tmp/gref

DIR/vgg19.safetensors holds VGG-19 weights (random, torchvision keys); each
DIR/<case>/ holds config.json (flavour, pooling, layers and weights, Adam
settings), inputs.safetensors (content, style1[, style2], x0) and
engine.safetensors (loss_content, loss_style, loss_tv, loss_total at x0, grad:
the total loss's gradient at x0, adam: x0 after the Adam steps, lbfgs: x0
after the L-BFGS iterations, compared with torch.optim.LBFGS).

This script rebuilds everything from the definitions, not from the engine's
code: VGG-19 as torchvision's nn.Sequential indices, its two input
conventions (torchvision: ImageNet mean/std on RGB 0..1; Caffe: BGR 0..255
minus the mean pixel, the file's conv1_1 reading BGR), the losses of
nets/gatys.hpp (per-layer division by the target's mean square, Gram / CHW,
blend weights normalized, TV as a mean), and torch.optim.Adam. It computes in
float64 by default, so the numbers are the truth the engine's float32 is
measured against: losses and gradient within 1e-4 relative (L2 for the
gradient), the images after the Adam steps at 40 dB PSNR or better (peak 1).
Exit status 1 if any check fails. Needs only torch (no safetensors package).
"""
import argparse
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

LOSS_TOLERANCE = 1e-4
GRAD_TOLERANCE = 1e-4
MIN_PSNR_DB = 40.0

BLOCKS = [2, 2, 4, 4, 4]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CAFFE_MEAN_BGR = [103.939, 116.779, 123.68]


def read_safetensors(path, dtype, device):
    """name -> tensor; F32 only (what nst writes)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", f"{path}: {name} is {e['dtype']}"
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
        out[name] = t.reshape(e["shape"]).to(device=device, dtype=dtype)
    return out


def vgg_layers():
    """(name, kind, torchvision index) for conv1_1 ... pool5."""
    layers, index = [], 0
    for b, n in enumerate(BLOCKS):
        for j in range(n):
            suffix = f"{b + 1}_{j + 1}"
            layers.append((f"conv{suffix}", "conv", index))
            layers.append((f"relu{suffix}", "relu", index + 1))
            index += 2
        layers.append((f"pool{b + 1}", "pool", index))
        index += 1
    return layers


class Vgg:
    def __init__(self, weights, flavor, pooling):
        self.weights, self.flavor, self.pooling = weights, flavor, pooling

    def preprocess(self, x):
        if self.flavor == "caffe":
            bgr = x[:, [2, 1, 0]] * 255.0
            mean = torch.tensor(CAFFE_MEAN_BGR, dtype=x.dtype, device=x.device)
            return bgr - mean.view(1, 3, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def features(self, x, wanted):
        out, deepest = {}, max(i for i, l in enumerate(vgg_layers()) if l[0] in wanted)
        x = self.preprocess(x)
        for name, kind, index in vgg_layers()[: deepest + 1]:
            if kind == "conv":
                x = F.conv2d(x, self.weights[f"features.{index}.weight"],
                             self.weights[f"features.{index}.bias"], padding=1)
            elif kind == "relu":
                x = F.relu(x)
            else:
                x = F.avg_pool2d(x, 2) if self.pooling == "avg" else F.max_pool2d(x, 2)
            if name in wanted:
                out[name] = x
        return out


def gram(f):
    n, c, h, w = f.shape
    m = f.reshape(c, h * w)
    return (m @ m.t()) / (c * h * w)


def f32(v):
    """A weight as the engine holds it (float32), in Python's float."""
    return float(torch.tensor(v, dtype=torch.float32))


class Objective:
    def __init__(self, vgg, config, content, styles):
        self.vgg = vgg
        cw, sw = f32(config["content_weight"]), f32(config["style_weight"])
        self.content_layers = [(n, f32(w)) for n, w in config["content_layers"] if f32(w) > 0 and cw > 0]
        self.style_layers = [(n, f32(w)) for n, w in config["style_layers"] if f32(w) > 0 and sw > 0]
        self.cw, self.sw, self.tv = cw, sw, f32(config["tv_weight"])
        with torch.no_grad():
            p = vgg.features(content, {n for n, _ in self.content_layers})
            self.content_targets = [(n, w, p[n]) for n, w in self.content_layers]
            blend = [f32(b) for b in config["style_blend"]]
            total = sum(blend)
            grams = {}
            for s, b in zip(styles, blend):
                fs = vgg.features(s, {n for n, _ in self.style_layers})
                for n, _ in self.style_layers:
                    g = gram(fs[n]) * (b / total)
                    grams[n] = grams[n] + g if n in grams else g
            self.style_targets = [(n, w, grams[n]) for n, w in self.style_layers]

    @staticmethod
    def factor(target):
        ms = float((target * target).mean())
        return 1.0 / ms if ms > 0 else 1.0

    def losses(self, x):
        wanted = {n for n, _ in self.content_layers} | {n for n, _ in self.style_layers}
        f = self.vgg.features(x, wanted)
        zero = x.new_zeros(())
        content = sum((w * self.factor(t) * F.mse_loss(f[n], t) for n, w, t in self.content_targets), zero)
        style = sum((w * self.factor(t) * F.mse_loss(gram(f[n]), t) for n, w, t in self.style_targets), zero)
        dh = x[:, :, 1:, :] - x[:, :, :-1, :]
        dw = x[:, :, :, 1:] - x[:, :, :, :-1]
        tv = ((dh * dh).sum() + (dw * dw).sum()) / x.numel()
        content, style, tv = self.cw * content, self.sw * style, self.tv * tv
        return {"content": content, "style": style, "tv": tv, "total": content + style + tv}


def psnr(a, b):
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def relative(ours, ref):
    ours, ref = ours.double().flatten(), ref.double().flatten()
    den = float(ref.norm())
    return float((ours - ref).norm()) / (den if den > 0 else 1.0)


def check_case(case_dir, weights, device, dtype):
    with open(os.path.join(case_dir, "config.json")) as f:
        config = json.load(f)
    inputs = read_safetensors(os.path.join(case_dir, "inputs.safetensors"), dtype, device)
    engine = read_safetensors(os.path.join(case_dir, "engine.safetensors"), torch.float64, "cpu")
    styles = [inputs[k] for k in sorted(inputs) if k.startswith("style")]
    vgg = Vgg(weights, config["flavor"], config["pooling"])
    objective = Objective(vgg, config, inputs["content"], styles)

    x = inputs["x0"].clone().requires_grad_(True)
    losses = objective.losses(x)
    losses["total"].backward()
    rows = []
    for k in ["content", "style", "tv", "total"]:
        ref = losses[k].detach().double().cpu().reshape(1)
        rows.append((f"loss {k}", float(ref), relative(engine[f"loss_{k}"], ref), LOSS_TOLERANCE, "rel"))
    rows.append(("gradient", float(x.grad.norm()), relative(engine["grad"], x.grad.cpu()), GRAD_TOLERANCE, "rel L2"))

    a = config["adam"]
    y = inputs["x0"].clone().requires_grad_(True)
    adam = torch.optim.Adam([y], lr=f32(a["lr"]), betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    for _ in range(a["steps"]):
        adam.zero_grad()
        objective.losses(y)["total"].backward()
        adam.step()
    moved = psnr(y.detach().cpu(), inputs["x0"].cpu())
    db = psnr(engine["adam"], y.detach().cpu())
    rows.append((f"{a['steps']} Adam steps", moved, db, MIN_PSNR_DB, "PSNR dB"))

    if "lbfgs" in config and "lbfgs" in engine:  # torch.optim.LBFGS as neural-style-pt runs it: one step() call
        b = config["lbfgs"]
        z = inputs["x0"].clone().requires_grad_(True)
        lbfgs = torch.optim.LBFGS([z], lr=f32(b["lr"]), max_iter=b["steps"], history_size=b["history"])

        def closure():
            lbfgs.zero_grad()
            loss = objective.losses(z)["total"]
            loss.backward()
            return loss

        lbfgs.step(closure)
        moved = psnr(z.detach().cpu(), inputs["x0"].cpu())
        db = psnr(engine["lbfgs"], z.detach().cpu())
        rows.append((f"{b['steps']} L-BFGS steps", moved, db, MIN_PSNR_DB, "PSNR dB"))

    ok = True
    print(f"{os.path.basename(case_dir)} ({config['flavor']}, {config['pooling']} pooling, engine on "
          f"{config.get('engine_device', '?')}):")
    for name, value, err, tol, unit in rows:
        good = err >= tol if unit == "PSNR dB" else err <= tol
        ok &= good
        what = "PSNR from x0" if unit == "PSNR dB" else "reference"
        print(f"  {name:<16} {what} {value:12.6g}   {unit} {err:10.3g}   (need {'>=' if unit == 'PSNR dB' else '<='} "
              f"{tol:g})  {'ok' if good else 'FAIL'}")
    return ok


def run_cases(description, test, check_case):
    """The command line both reference scripts share: DIR holds vgg19.safetensors
    and one folder per case (with config.json), as `test` ("test_gatys") wrote
    them; check_case(case_dir, vgg_weights, device, dtype) prints its checks and
    returns whether all passed. Exits 0 when every case passed, else 1."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("dir", help=f"what {test} \"[.reference]\" wrote")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    weights = read_safetensors(os.path.join(args.dir, "vgg19.safetensors"), dtype, args.device)
    cases = sorted(d for d in os.listdir(args.dir) if os.path.isfile(os.path.join(args.dir, d, "config.json")))
    if not cases:
        sys.exit(f"{args.dir}: no case directories (run {test} \"[.reference]\" first)")
    print(f"reference on {args.device}, {args.dtype}, torch {torch.__version__}")
    ok = all([check_case(os.path.join(args.dir, c), weights, args.device, dtype) for c in cases])
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


def main():
    run_cases(__doc__.split("\n")[0], "test_gatys", check_case)


if __name__ == "__main__":
    main()
