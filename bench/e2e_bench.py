#!/usr/bin/env python3
"""nst against PyTorch eager on the three workloads, on the same card, in one script.

For each configuration this runs build/bench/e2e_bench (bench/e2e_bench.cpp)
and the same workload written in PyTorch eager here, then prints a markdown
table (ms, images/s, peak GPU memory, speed-up = PyTorch ms / nst ms at the
same precision) and
writes every number to a JSON file:

  stylize   the Johnson transformation network (5 residual blocks, width 32,
            reflect padding, instance norm, nearest upsampling + conv), no
            autograd; fp32 with TF32 allowed on both sides, and on a GPU
            fp16 and bf16 on both sides too (nst --precision: 16-bit storage,
            fp32 math; PyTorch .half() / .bfloat16());
  train     a training step at 256x256, batch 4: network, VGG-19 perceptual
            loss (content relu2_2, style relu1_2/2_2/3_3/4_3, each layer
            divided by its target's mean square), backward, Adam;
  optimize  one optimization-mode iteration at 512 and 1024 px: VGG-19 losses
            (content relu4_2, style relu1_1..relu5_1, average pooling),
            backward, L-BFGS (torch.optim.LBFGS, one iteration per step).

Weights are random on both sides (speed does not depend on them); inputs live
on the device. Usage (GPU machine):

  python3 bench/e2e_bench.py --bin build/bench/e2e_bench --json bench/results/e2e_h100_DATE.json
  python3 bench/e2e_bench.py --device cpu                # CPU sizes, all cores (Debian: /usr/bin/python3)
  python3 bench/e2e_bench.py --device cpu --quick       # a smoke test anywhere
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BLOCKS = [2, 2, 4, 4, 4]


# ---- the networks, as PyTorch users write them ------------------------------------------------
class ConvLayer(nn.Module):
    def __init__(self, cin, cout, k, stride=1, upsample=False, norm=True):
        super().__init__()
        self.upsample, self.pad = upsample, k // 2
        self.conv = nn.Conv2d(cin, cout, k, stride)
        self.norm = nn.InstanceNorm2d(cout, affine=True) if norm else None

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv(F.pad(x, (self.pad,) * 4, mode="reflect"))
        return self.norm(x) if self.norm is not None else x


class TransformNet(nn.Module):
    def __init__(self, width=32, blocks=5):
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.down = nn.ModuleList([ConvLayer(3, c1, 9), ConvLayer(c1, c2, 3, 2), ConvLayer(c2, c3, 3, 2)])
        self.res = nn.ModuleList([nn.ModuleList([ConvLayer(c3, c3, 3), ConvLayer(c3, c3, 3)]) for _ in range(blocks)])
        self.up = nn.ModuleList([ConvLayer(c3, c2, 3, upsample=True), ConvLayer(c2, c1, 3, upsample=True),
                                 ConvLayer(c1, 3, 9, norm=False)])

    def forward(self, x):
        for layer in self.down:
            x = F.relu(layer(x))
        for a, b in self.res:
            x = x + b(F.relu(a(x)))
        x = F.relu(self.up[0](x))
        x = F.relu(self.up[1](x))
        return self.up[2](x)


def vgg_layer_names():
    names = []
    for b, n in enumerate(BLOCKS):
        for j in range(n):
            names += [f"conv{b + 1}_{j + 1}", f"relu{b + 1}_{j + 1}"]
        names.append(f"pool{b + 1}")
    return names


class Vgg19(nn.Module):
    def __init__(self, pooling):
        super().__init__()
        layers, cin = [], 3
        for b, n in enumerate(BLOCKS):
            cout = 64 * 2 ** min(b, 3)
            for _ in range(n):
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
                cin = cout
            layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
        self.layers = nn.Sequential(*layers)
        for p in self.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x, wanted):
        out, names = {}, vgg_layer_names()
        last = max(names.index(n) for n in wanted)
        x = (x - self.mean) / self.std
        for i, layer in enumerate(self.layers[: last + 1]):
            x = layer(x)
            if names[i] in wanted:
                out[names[i]] = x
        return out


def gram(f):
    n, c, h, w = f.shape
    m = f.reshape(n, c, h * w)
    return m @ m.transpose(1, 2) / (c * h * w)


def inv_mean_square(t):
    return 1.0 / (t * t).mean().clamp_min(1e-30)


# ---- timing ----------------------------------------------------------------------------------------
def timed(step, device, iters, warmup):
    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None  # not tracked on the CPU
    return statistics.median(times), min(times), peak


def torch_stylize(cfg, device, precision):
    net = TransformNet().to(device).eval()
    x = torch.rand(cfg["batch"], 3, cfg["height"], cfg["width"], device=device) * 255
    if precision != "fp32":
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        net, x = net.to(dtype), x.to(dtype)
    with torch.no_grad():
        return timed(lambda: net(x), device, cfg["iters"], cfg["warmup"])


def torch_train(cfg, device):
    net = TransformNet().to(device)
    vgg = Vgg19("max").to(device)
    content_layers, style_layers = ["relu2_2"], ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    with torch.no_grad():
        style = torch.rand(1, 3, cfg["height"], cfg["width"], device=device)
        grams = {n: gram(f) for n, f in vgg(style, set(style_layers)).items()}
        factors = {n: inv_mean_square(g) for n, g in grams.items()}
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    photos = torch.rand(cfg["batch"], 3, cfg["height"], cfg["width"], device=device) * 255

    def step():
        x = photos / 255
        y = net(photos) / 255
        with torch.no_grad():
            targets = vgg(x, set(content_layers))
        f = vgg(y, set(content_layers + style_layers))
        content = sum(inv_mean_square(targets[n]) * F.mse_loss(f[n], targets[n]) for n in content_layers)
        style_loss = sum(factors[n] * F.mse_loss(gram(f[n]), grams[n].expand(y.shape[0], -1, -1))
                         for n in style_layers)
        loss = content + 5 * style_loss
        adam.zero_grad()
        loss.backward()
        adam.step()
        return loss.item()  # as nst-run, which reports every step's loss

    return timed(step, device, cfg["iters"], cfg["warmup"])


def torch_optimize(cfg, device):
    vgg = Vgg19("avg").to(device)
    content_layers = ["relu4_2"]
    style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    shape = (1, 3, cfg["height"], cfg["width"])
    with torch.no_grad():
        content, style = torch.rand(*shape, device=device), torch.rand(*shape, device=device)
        targets = vgg(content, set(content_layers))
        grams = {n: gram(f) for n, f in vgg(style, set(style_layers)).items()}
        cf = {n: inv_mean_square(t) for n, t in targets.items()}
        sf = {n: inv_mean_square(g) for n, g in grams.items()}
    x = content.clone().requires_grad_(True)

    def closure():
        opt.zero_grad()
        f = vgg(x, set(content_layers + style_layers))
        loss = 0.05 * sum(cf[n] * F.mse_loss(f[n], targets[n]) for n in content_layers)
        loss = loss + sum(sf[n] * F.mse_loss(gram(f[n]), grams[n]) for n in style_layers)
        loss.backward()
        return loss

    if cfg["optimizer"] == "adam":
        opt = torch.optim.Adam([x], lr=0.02)
        step = lambda: (closure().item(), opt.step())
    else:
        opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100)
        step = lambda: opt.step(closure)
    return timed(step, device, cfg["iters"], cfg["warmup"])


# ---- the comparison -----------------------------------------------------------------------------------
def configs(quick, short=False, device="cuda"):
    if device == "cpu" and not quick:  # the sizes a CPU user runs (issue 14's table)
        return [dict(workload="stylize", height=474, width=712, batch=1, iters=5, warmup=1),
                dict(workload="train", height=128, width=128, batch=2, iters=5, warmup=1),
                dict(workload="optimize", height=256, width=256, batch=1, optimizer="lbfgs", iters=10, warmup=2),
                dict(workload="optimize", height=512, width=512, batch=1, optimizer="lbfgs", iters=5, warmup=1)]
    if short:  # the GPU check's few minutes: the full sizes, fewer iterations
        return [dict(workload="stylize", height=1080, width=1920, batch=1, iters=10, warmup=3),
                dict(workload="stylize", height=2160, width=3840, batch=1, iters=5, warmup=2),
                dict(workload="train", height=256, width=256, batch=4, iters=10, warmup=3),
                dict(workload="optimize", height=512, width=512, batch=1, optimizer="lbfgs", iters=10, warmup=3),
                dict(workload="optimize", height=1024, width=1024, batch=1, optimizer="lbfgs", iters=5, warmup=2),
                dict(workload="optimize", height=512, width=512, batch=1, optimizer="adam", iters=10, warmup=3)]
    if quick:
        return [dict(workload="stylize", height=64, width=96, batch=1, iters=3, warmup=1),
                dict(workload="train", height=64, width=64, batch=2, iters=2, warmup=1),
                dict(workload="optimize", height=64, width=64, batch=1, optimizer="lbfgs", iters=2, warmup=1)]
    return [dict(workload="stylize", height=1080, width=1920, batch=1, iters=50, warmup=5),
            dict(workload="stylize", height=2160, width=3840, batch=1, iters=20, warmup=3),
            dict(workload="train", height=256, width=256, batch=4, iters=50, warmup=5),
            dict(workload="optimize", height=512, width=512, batch=1, optimizer="lbfgs", iters=30, warmup=5),
            dict(workload="optimize", height=1024, width=1024, batch=1, optimizer="lbfgs", iters=20, warmup=3),
            dict(workload="optimize", height=512, width=512, batch=1, optimizer="adam", iters=30, warmup=5)]


def run_nst(binary, cfg, device, precision="fp32"):
    cmd = [binary, cfg["workload"], "--device", device, "--height", str(cfg["height"]), "--width", str(cfg["width"]),
           "--batch", str(cfg["batch"]), "--iters", str(cfg["iters"]), "--warmup", str(cfg["warmup"]), "--tf32"]
    if precision != "fp32":
        cmd += ["--precision", precision]
    if cfg.get("optimizer") == "adam":
        cmd.append("--adam")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/bench/e2e_bench")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", help="write every number here")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that everything runs")
    p.add_argument("--short", action="store_true", help="full sizes, fewer iterations (tools/gpu_check.sh)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for both sides (default: all cores)")
    args = p.parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)  # Debian's torch starts with one
    os.environ["NST_NUM_THREADS"] = str(threads)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # "fp32 (TF32 allowed)", both sides
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        card = torch.cuda.get_device_name()
    else:
        card = f"cpu ({threads} threads)"
    date = datetime.date.today().isoformat()
    print(f"{card}, torch {torch.__version__}, {date}\n")
    print("| workload | engine | median ms | images/s | peak MiB | nst speed-up vs PyTorch, same precision |")
    print("|---|---|---|---|---|---|", flush=True)
    records = []

    def save():  # after every row: a run stopped at its time limit keeps what it measured
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(card=card, torch=torch.__version__, date=date, device=args.device, results=records),
                          f, indent=1)

    for cfg in configs(args.quick, args.short, "cpu" if args.device == "cpu" else "cuda"):
        what = f"{cfg['workload']} {cfg['width']}x{cfg['height']} batch {cfg['batch']}"
        if cfg.get("optimizer"):
            what += f" {cfg['optimizer']}"
        precisions = ["fp32"]
        if cfg["workload"] == "stylize" and args.device.startswith("cuda"):
            precisions += ["fp16", "bf16"]
        for precision in precisions:
            if cfg["workload"] == "stylize":
                ms, best, peak = torch_stylize(cfg, args.device, precision)
            elif cfg["workload"] == "train":
                ms, best, peak = torch_train(cfg, args.device)
            else:
                ms, best, peak = torch_optimize(cfg, args.device)
            ours = run_nst(args.bin, cfg, args.device, precision)
            label = "fp32/TF32" if precision == "fp32" else precision
            images = cfg["batch"] * 1000 / ms
            peak_mib = "-" if peak is None else f"{peak / 2**20:.0f}"
            print(f"| {what} | PyTorch {label} | {ms:.2f} | {images:.1f} | {peak_mib} | |")
            records.append(dict(cfg, engine="pytorch", precision=label, median_ms=ms, min_ms=best,
                                images_per_s=images, peak_bytes=peak))
            print(f"| {what} | nst {label} | {ours['median_ms']:.2f} | {ours['images_per_s']:.1f} | "
                  f"{ours['peak_bytes'] / 2**20:.0f} | {ms / ours['median_ms']:.2f}x |", flush=True)
            records.append(dict(ours, precision=label, speedup_vs_pytorch=ms / ours["median_ms"]))
            save()


if __name__ == "__main__":
    sys.exit(main())
