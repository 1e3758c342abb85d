#!/usr/bin/env python3
"""nst against PyTorch eager on the three workloads, on the same card, in one script.

For each configuration this runs build/bench/e2e_bench (bench/e2e_bench.cpp)
and the same workload written in PyTorch eager here, then prints a markdown
table and writes every number to a JSON file:

  stylize   the Johnson transformation network (5 residual blocks, width 32,
            reflect padding, instance norm, nearest upsampling + conv), no
            autograd; fp32 with TF32 allowed on both sides, and on a GPU
            fp16 and bf16 on both sides too (nst --precision: 16-bit storage,
            fp32 math; PyTorch .half() / .bfloat16());
  train     a training step: network, VGG-19 perceptual loss (content
            relu2_2, style relu1_2/2_2/3_3/4_3, each layer divided by its
            target's mean square), backward, Adam;
  optimize  one optimization-mode iteration: VGG-19 losses (content relu4_2,
            style relu1_1..relu5_1, average pooling), backward, L-BFGS
            (torch.optim.LBFGS, one iteration per step) or Adam.

Weights are random on both sides (speed does not depend on them); inputs live
on the device.

How a figure is taken, so that it reproduces:
  * rounds: the two sides run alternately, PyTorch then nst, --rounds times
    (default 3; --short 1, for the GPU check's fixed time). Each run builds
    its workload afresh (nst in a new process, PyTorch new modules and
    optimizer state), warms up, and times --iters steps to the device's
    completion; its figure is the median of those steps. A side's figure is
    its best run; the spread, (worst - best) / best of its runs, says how
    much the machine moved meanwhile.
  * the same threads: --threads (default: the cores this process may use)
    for nst (NST_NUM_THREADS), PyTorch (set_num_threads, OMP_NUM_THREADS)
    and PyTorch's BLAS (OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, set before
    torch loads: the BLAS reads them once). All of them are read back and
    printed, and a run where they differ is refused.
  * PyTorch's BLAS: Debian's torch calls whatever libblas.so.3 the system's
    alternatives give it (`update-alternatives --display
    libblas.so.3-x86_64-linux-gnu`); without OpenBLAS installed that is the
    reference BLAS, several times slower at matmuls and at the im2col
    convolutions that use them (matmuls 2-4x, issue 23), and no fair peer.
    The script finds the library that defines the sgemm_ torch calls
    (dladdr) and refuses a reference BLAS with what to install, unless
    --allow-reference-blas (then every PyTorch row says so).
  * GFLOP/s: each workload's floating-point operations are counted
    analytically from the layer shapes (flops_per_step below: convolutions
    and the Gram matrices' GEMMs; elementwise work, norms, pooling and the
    optimizer's vector updates are left out), the same count for both
    sides, divided by the side's best time: the direct algorithm's count,
    so a convolution done with fewer operations (Winograd, FFT) shows an
    effective rate. The layer shapes the count walks are checked against
    the PyTorch modules' own at the start.

Usage:

  python3 bench/e2e_bench.py --bin build/bench/e2e_bench --json bench/results/e2e_h100_DATE.json
  python3 bench/e2e_bench.py --device cpu --json bench/results/e2e_cpu_DATE.json   # Debian: /usr/bin/python3
  python3 bench/e2e_bench.py --device cpu --quick       # a smoke test anywhere
"""
import argparse
import ctypes
import datetime
import json
import os
import statistics
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/bench/e2e_bench")
    p.add_argument("--device", help="cpu or cuda[:N] (default: cuda when PyTorch sees a GPU)")
    p.add_argument("--json", help="write every number here")
    p.add_argument("--quick", action="store_true", help="tiny sizes: check that everything runs")
    p.add_argument("--short", action="store_true", help="full sizes, fewer iterations (tools/gpu_check.sh)")
    p.add_argument("--rounds", type=int, help="runs of each side, alternating (default 3; --short: 1)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for both sides (default: all cores)")
    p.add_argument("--allow-reference-blas", action="store_true",
                   help="measure even when PyTorch's BLAS is the reference one (rows are marked)")
    args = p.parse_args()
    if args.rounds is not None and args.rounds < 1:
        p.error("--rounds: at least 1")
    if args.threads < 0:
        p.error("--threads: at least 1 (0: all cores)")
    return args


ARGS = parse_args()
THREADS = ARGS.threads or len(os.sched_getaffinity(0))
# Before torch loads: its OpenMP runtime and its BLAS read these once, at load.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NST_NUM_THREADS"):
    os.environ[_variable] = str(THREADS)

import torch  # noqa: E402  (after the thread settings above)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

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


# ---- what a step computes: FLOPs counted from the layer shapes --------------------------------------
# A convolution's forward is 2 * Cin * Cout * k * k FLOPs (a multiply and an
# add) per output pixel; its gradient with respect to its input costs the
# same, and so does the gradient with respect to its weights. A Gram matrix
# C x C of a C x HW feature map is one GEMM, 2 * C * C * HW; its backward,
# (dG + dG^T) F, one more. Nothing else is counted.
def transform_net_convs(h, w, width=32, blocks=5):
    """(cin, cout, k, h_out, w_out) of every convolution of TransformNet on an h x w input, in order."""
    c1, c2, c3 = width, 2 * width, 4 * width
    convs = []

    def conv(cin, cout, k, stride=1):  # padded by k // 2 on each side
        nonlocal h, w
        h, w = (h + 2 * (k // 2) - k) // stride + 1, (w + 2 * (k // 2) - k) // stride + 1
        convs.append((cin, cout, k, h, w))

    conv(3, c1, 9)
    conv(c1, c2, 3, 2)
    conv(c2, c3, 3, 2)
    for _ in range(2 * blocks):
        conv(c3, c3, 3)
    h, w = 2 * h, 2 * w
    conv(c3, c2, 3)
    h, w = 2 * h, 2 * w
    conv(c2, c1, 3)
    conv(c1, 3, 9)
    return convs


def vgg_convs(h, w, last):
    """(cin, cout, k, h_out, w_out, relu name) of VGG-19's convolutions up to the layer `last` (a relu)."""
    convs, cin = [], 3
    for b, n in enumerate(BLOCKS):
        cout = 64 * 2 ** min(b, 3)
        for j in range(n):
            convs.append((cin, cout, 3, h, w, f"relu{b + 1}_{j + 1}"))
            cin = cout
            if convs[-1][5] == last:
                return convs
        h, w = h // 2, w // 2  # 2x2 pooling, floor
    raise ValueError(f"no layer {last}")


def conv_flops(convs):
    return sum(2 * cin * cout * k * k * h * w for cin, cout, k, h, w, *_ in convs)


def gram_flops(vgg, layers):
    """The Gram matrices' forward GEMMs at `layers` of vgg_convs' list."""
    return sum(2 * cout * cout * h * w for _, cout, _, h, w, name in vgg if name in layers)


def flops_per_step(cfg):
    """FLOPs of one step of the workload `cfg` (both sides do this work)."""
    h, w, batch = cfg["height"], cfg["width"], cfg["batch"]
    if cfg["workload"] == "stylize":
        return batch * conv_flops(transform_net_convs(h, w))
    if cfg["workload"] == "train":
        net = transform_net_convs(h, w)
        out_h, out_w = net[-1][3], net[-1][4]
        style = {"relu1_2", "relu2_2", "relu3_3", "relu4_3"}
        vgg = vgg_convs(out_h, out_w, "relu4_3")
        # The network: forward, weight gradients, input gradients but the first layer's (the photos need none).
        network = 3 * conv_flops(net) - conv_flops(net[:1])
        # The content targets (the photos to relu2_2, no graph); the output to relu4_3, forward and input gradients.
        targets = conv_flops(vgg_convs(h, w, "relu2_2"))
        perceptual = 2 * conv_flops(vgg) + 2 * gram_flops(vgg, style)
        return batch * (network + targets + perceptual)
    # optimize: the image to relu5_1, forward and input gradients, five Gram matrices and their backward.
    vgg = vgg_convs(h, w, "relu5_1")
    return 2 * conv_flops(vgg) + 2 * gram_flops(vgg, {f"relu{i}_1" for i in range(1, 6)})


def check_layer_shapes():
    """The shapes the count walks are those the PyTorch modules produce (odd sizes: the roundings)."""
    seen = []

    def hook(module, inputs, output):
        seen.append((module.in_channels, module.out_channels, module.kernel_size[0], output.shape[2], output.shape[3]))

    h, w = 37, 53
    with torch.no_grad():
        for net, run, walked in [
                (TransformNet(), lambda m: m(torch.rand(1, 3, h, w)), transform_net_convs(h, w)),
                (Vgg19("avg"), lambda m: m(torch.rand(1, 3, h, w), {"relu5_1"}),
                 [c[:5] for c in vgg_convs(h, w, "relu5_1")])]:
            seen.clear()
            handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
            run(net)
            for handle in handles:
                handle.remove()
            if seen != walked:
                sys.exit(f"e2e_bench.py: the FLOP count's layer shapes {walked} differ from "
                         f"{type(net).__name__}'s {seen}: fix transform_net_convs / vgg_convs")


# ---- the peer's set-up: BLAS and threads -------------------------------------------------------------
class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def torch_blas():
    """PyTorch's BLAS as (kind, library, detail, threads): kind is MKL, OpenBLAS, BLIS, reference or unknown.

    The library is the one that defines the sgemm_ that libtorch_cpu calls
    (dlsym on its handle, then dladdr); threads is the BLAS's own thread
    count where it says (OpenBLAS), else None."""
    if torch.backends.mkl.is_available():
        return "MKL", "linked into torch", "", None
    lib = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        address = ctypes.cast(ctypes.CDLL(lib).sgemm_, ctypes.c_void_p)
        info = _DlInfo()
        if not ctypes.CDLL(None).dladdr(address, ctypes.byref(info)):
            raise OSError("dladdr found no library")
    except (OSError, AttributeError) as e:
        return "unknown", lib, f"sgemm_ not found: {e}", None
    path = info.dli_fname.decode()
    real = os.path.realpath(path)
    where = path if real == path else f"{path} -> {real}"
    blas = ctypes.CDLL(path)
    if hasattr(blas, "openblas_get_config"):
        blas.openblas_get_config.restype = ctypes.c_char_p
        return "OpenBLAS", where, blas.openblas_get_config().decode(), blas.openblas_get_num_threads()
    name = os.path.basename(real).lower()
    if "mkl" in name:
        return "MKL", where, "", None
    if "blis" in name:
        return "BLIS", where, "", None
    # Debian's reference BLAS: /usr/lib/<triplet>/blas/libblas.so.3, the netlib Fortran loops.
    if os.path.basename(os.path.dirname(real)) == "blas" or "refblas" in name:
        return "reference", where, "netlib reference BLAS", None
    return "unknown", where, "", None


# ---- PyTorch's side: each make_* builds a workload afresh and returns its step ------------------------
def timed(step, device, iters, warmup):
    """Warm-up, then `iters` steps timed to the device's completion: (median ms, min ms, peak bytes)."""
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


def make_stylize(cfg, device, precision):
    net = TransformNet().to(device).eval()
    x = torch.rand(cfg["batch"], 3, cfg["height"], cfg["width"], device=device) * 255
    if precision != "fp32":
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        net, x = net.to(dtype), x.to(dtype)

    def step():
        with torch.no_grad():
            net(x)

    return step


def make_train(cfg, device):
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

    return step


def make_optimize(cfg, device):
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
        return lambda: (closure().item(), opt.step())
    opt = torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=100)
    return lambda: opt.step(closure)


def run_torch(cfg, device, precision):
    """One PyTorch run of `cfg`, built afresh (as nst's process is): median ms, min ms, peak bytes."""
    if cfg["workload"] == "stylize":
        step = make_stylize(cfg, device, precision)
    elif cfg["workload"] == "train":
        step = make_train(cfg, device)
    else:
        step = make_optimize(cfg, device)
    return timed(step, device, cfg["iters"], cfg["warmup"])


def run_nst(binary, cfg, device, precision="fp32"):
    """One nst run of `cfg` (a new e2e_bench process): its JSON line."""
    cmd = [binary, cfg["workload"], "--device", device, "--height", str(cfg["height"]), "--width", str(cfg["width"]),
           "--batch", str(cfg["batch"]), "--iters", str(cfg["iters"]), "--warmup", str(cfg["warmup"]), "--tf32"]
    if precision != "fp32":
        cmd += ["--precision", precision]
    if cfg.get("optimizer") == "adam":
        cmd.append("--adam")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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




def best_and_spread(medians):
    """A side's figure: its best run's median, and (worst - best) / best over its runs."""
    best = min(medians)
    return best, (max(medians) - best) / best


def peer_setup(device):
    """PyTorch's BLAS and threads, printed; exits where the peer would not be a fair one."""
    kind, library, detail, blas_threads = torch_blas()
    threads = {"requested": THREADS, "torch": torch.get_num_threads()}
    if blas_threads is not None:
        threads["torch's BLAS"] = blas_threads
    print(f"PyTorch's BLAS: {kind} ({library}{', ' + detail if detail else ''}); "
          f"convolutions through oneDNN: {torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled}")
    warning = ""
    if device == "cpu":
        if kind == "reference":
            message = ("PyTorch's matmuls (and its im2col convolutions) would run on the reference BLAS, several "
                       "times slower than an optimized one: no fair peer. Install OpenBLAS (Debian: apt-get install "
                       "libopenblas0-pthread; update-alternatives then points libblas.so.3 at it) and check with "
                       "update-alternatives --display libblas.so.3-x86_64-linux-gnu")
            if not ARGS.allow_reference_blas:
                sys.exit(f"e2e_bench.py: {message}; or pass --allow-reference-blas to measure anyway.")
            warning = "reference BLAS: not a fair peer"
            print(f"WARNING: {message}", file=sys.stderr)
        elif kind == "unknown":
            warning = "BLAS not identified"
            print(f"WARNING: PyTorch's {warning}: check torch.__config__.show() and its libraries", file=sys.stderr)
    return dict(kind=kind, library=library, detail=detail), threads, warning


def main():
    device = ARGS.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rounds = ARGS.rounds or (1 if ARGS.short else 3)
    torch.set_num_threads(THREADS)  # Debian's torch starts with one
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True  # "fp32 (TF32 allowed)", both sides
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        card = torch.cuda.get_device_name()
    else:
        card = f"cpu ({THREADS} threads)"
    check_layer_shapes()
    date = datetime.date.today().isoformat()
    print(f"{card}, torch {torch.__version__}, {date}; PyTorch and nst alternating, {rounds} run(s) each, "
          "the best run's median step reported")
    blas, threads, warning = peer_setup(device)
    print(f"threads: {', '.join(f'{k} {v}' for k, v in threads.items())}, nst's printed per row")
    if device == "cpu" and len(set(threads.values())) != 1:
        sys.exit(f"e2e_bench.py: PyTorch runs on other thread counts than asked ({threads}); "
                 "was torch loaded before the script set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS?")
    print()
    print("| workload | GFLOP a step | engine | threads | ms, best run | spread | images/s | GFLOP/s | peak MiB "
          "| nst speed vs PyTorch, same precision |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    records = []

    def save():  # after every row: a run stopped at its time limit keeps what it measured
        if ARGS.json:
            with open(ARGS.json, "w") as f:
                json.dump(dict(card=card, torch=torch.__version__, date=date, device=device, rounds=rounds,
                               threads=threads, blas=blas, warning=warning, results=records), f, indent=1)

    for cfg in configs(ARGS.quick, ARGS.short, "cpu" if device == "cpu" else "cuda"):
        what = f"{cfg['workload']} {cfg['width']}x{cfg['height']} batch {cfg['batch']}"
        if cfg.get("optimizer"):
            what += f" {cfg['optimizer']}"
        gflop = flops_per_step(cfg) / 1e9
        precisions = ["fp32"]
        if cfg["workload"] == "stylize" and device.startswith("cuda"):
            precisions += ["fp16", "bf16"]
        for precision in precisions:
            theirs, ours = [], []
            for _ in range(rounds):  # A B A B ...
                theirs.append(run_torch(cfg, device, precision))
                ours.append(run_nst(ARGS.bin, cfg, device, precision))
            nst_threads = ours[0].get("threads")
            if device == "cpu" and nst_threads != THREADS:
                sys.exit(f"e2e_bench.py: nst ran on {nst_threads} threads, not {THREADS} (NST_NUM_THREADS)")
            label = "fp32/TF32" if precision == "fp32" else precision
            torch_ms, torch_spread = best_and_spread([r[0] for r in theirs])
            nst_ms, nst_spread = best_and_spread([r["median_ms"] for r in ours])
            peak = max((r[2] for r in theirs if r[2] is not None), default=None)
            mark = f" ({warning})" if warning else ""
            print(f"| {what} | {gflop:.1f} | PyTorch {label}{mark} | {torch.get_num_threads()} | {torch_ms:.2f} | "
                  f"{torch_spread:.0%} | {cfg['batch'] * 1000 / torch_ms:.2f} | {gflop * 1000 / torch_ms:.1f} | "
                  f"{'-' if peak is None else f'{peak / 2**20:.0f}'} | |")
            records.append(dict(cfg, engine="pytorch", precision=label, best_ms=torch_ms, spread=torch_spread,
                                run_median_ms=[r[0] for r in theirs], run_min_ms=[r[1] for r in theirs],
                                images_per_s=cfg["batch"] * 1000 / torch_ms, gflop=gflop,
                                gflop_per_s=gflop * 1000 / torch_ms, peak_bytes=peak))
            speedup = torch_ms / nst_ms
            print(f"| {what} | {gflop:.1f} | nst {label} | {nst_threads} | {nst_ms:.2f} | {nst_spread:.0%} | "
                  f"{cfg['batch'] * 1000 / nst_ms:.2f} | {gflop * 1000 / nst_ms:.1f} | "
                  f"{max(r['peak_bytes'] for r in ours) / 2**20:.0f} | {speedup:.2f}x |", flush=True)
            about = {k: v for k, v in ours[0].items() if k not in ("median_ms", "min_ms")}  # one run's: below
            records.append(dict(about, precision=label, best_ms=nst_ms, spread=nst_spread,
                                run_median_ms=[r["median_ms"] for r in ours], run_min_ms=[r["min_ms"] for r in ours],
                                images_per_s=cfg["batch"] * 1000 / nst_ms, gflop=gflop,
                                gflop_per_s=gflop * 1000 / nst_ms, peak_bytes=max(r["peak_bytes"] for r in ours),
                                speedup_vs_pytorch=speedup))
            save()


if __name__ == "__main__":
    sys.exit(main())
