#!/usr/bin/env python3
"""Independent reference for the pretrained fast-style-transfer networks.

A PyTorch implementation of the TensorFlow fast-style-transfer
transformation network, written from ../shared/data/README.md alone (not
from nst's C++), to check nst's importer and forward pass:

  * variables Variable, Variable_1, ... in network order, as (filter,
    instance-norm beta, instance-norm gamma) triples: conv 9x9/1, conv 3x3/2,
    conv 3x3/2, five residual blocks of two conv 3x3/1 (ReLU after the first
    only; the block adds its input), transposed conv 3x3/2 twice, conv 9x9/1
    (no ReLU);
  * conv filters [kh, kw, in, out], transposed-conv filters [kh, kw, out, in];
  * TensorFlow 'SAME' padding (the odd pixel bottom/right); a transposed conv
    is computed literally as TensorFlow defines it: the gradient of a
    stride-2 'SAME' conv whose input is twice the size;
  * instance norm gamma * (x - mean) / sqrt(var + 1e-3) + beta, biased
    variance over H, W; no conv bias;
  * input RGB 0..255; output tanh(x) * 150 + 127.5 clipped to 0..255.

The strided path rounds sizes up to multiples of 4 (a 45-row image comes out
with 48 rows); like nst, the result is cropped to the input's size, top-left.
Computation is float64 by default (no TF32), so the reference is exact to far
below the 50 dB that the check asks for.

Images are exchanged as .npy float32 [1, 3, H, W] in 0..255, which
`nst-run stylize` reads and writes too, so both sides see the same pixels.

  # full-size check (the GPU machine):
  ref=tools/reference/fast_style_reference.py
  python3 $ref inputs --content ../shared/data/content --out /tmp/ref/in
  python3 $ref run --pretrained ../shared/data/pretrained/fast-style-transfer \\
      --inputs /tmp/ref/in --out /tmp/ref/out --device cuda
  for s in la_muse scream udnie wave wreck; do
    build/tools/nst-run stylize --model ../shared/data/pretrained/fast-style-transfer/$s \\
        --in /tmp/ref/in --out /tmp/ours/$s --device cuda --quiet
  done
  python3 $ref compare --ref /tmp/ref/out --ours /tmp/ours        # exit 1 below 50 dB

  # the small committed set that CPU CTest checks (tests/data/fast_style_ref):
  python3 $ref small --pretrained ../shared/data/pretrained/fast-style-transfer \\
      --content ../shared/data/content --out tests/data/fast_style_ref
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
# Small sizes for the committed CPU test set: odd and even, several aspects.
SMALL_SIZES = {"tubingen": (64, 48), "golden_gate": (65, 49),
               "hoovertowernight": (75, 39), "stata": (61, 41)}


# ---- the network ----------------------------------------------------------------
def load_variables(net_dir):
    with open(os.path.join(net_dir, "manifest.json")) as f:
        manifest = json.load(f)

    def index(name):
        return 0 if name == "Variable" else int(name.split("_")[1])

    names = sorted(manifest, key=index)
    assert [index(n) for n in names] == list(range(len(names))), "variable names have gaps"
    variables = []
    for name in names:
        entry = manifest[name]
        shape = tuple(entry["shape"])
        data = np.fromfile(os.path.join(net_dir, entry["filename"]), dtype="<f4")
        assert data.size == int(np.prod(shape)), f"{name}: {data.size} values for shape {shape}"
        variables.append(data.reshape(shape))
    assert len(variables) == 48, f"{net_dir}: {len(variables)} variables, expected 16 triples"
    return variables


def same_pads(size, k, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_same(x, filt, stride):
    """TF conv2d, padding 'SAME'; filt [kh, kw, in, out]."""
    kh, kw = filt.shape[0], filt.shape[1]
    top, bottom = same_pads(x.shape[2], kh, stride)
    left, right = same_pads(x.shape[3], kw, stride)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, filt.permute(3, 2, 0, 1), stride=stride)


def conv_transpose_same(x, filt):
    """TF conv2d_transpose, stride 2, 'SAME', output exactly 2x; filt [kh, kw, out, in].

    By definition the gradient, with respect to its input, of conv2d 'SAME'
    stride 2 applied to a tensor of the output's shape, with the same filter
    read as [kh, kw, in=out_t, out=in_t]."""
    n, _, h, w = x.shape
    z = torch.zeros(n, filt.shape[2], 2 * h, 2 * w, dtype=x.dtype, device=x.device,
                    requires_grad=True)
    with torch.enable_grad():
        y = conv_same(z, filt, 2)
        assert y.shape == x.shape, (y.shape, x.shape)
        (grad,) = torch.autograd.grad(y, z, grad_outputs=x)
    return grad


def instance_norm(x, beta, gamma, eps=1e-3):
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
    return gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps) + beta.view(1, -1, 1, 1)


class FastStyleNet:
    def __init__(self, net_dir, device, dtype):
        self.v = [torch.from_numpy(a).to(device=device, dtype=dtype) for a in load_variables(net_dir)]

    def layer(self, i, x, stride=1, transpose=False, relu=True):
        filt, beta, gamma = self.v[3 * i], self.v[3 * i + 1], self.v[3 * i + 2]
        x = conv_transpose_same(x, filt) if transpose else conv_same(x, filt, stride)
        x = instance_norm(x, beta, gamma)
        return F.relu(x) if relu else x

    @torch.no_grad()
    def __call__(self, image):
        """image [N, 3, H, W] 0..255 -> [N, 3, H, W] 0..255 (clipped, cropped)."""
        h = self.layer(0, image)
        h = self.layer(1, h, stride=2)
        h = self.layer(2, h, stride=2)
        for b in range(5):
            h = h + self.layer(4 + 2 * b, self.layer(3 + 2 * b, h), relu=False)
        h = self.layer(13, h, transpose=True)
        h = self.layer(14, h, transpose=True)
        h = self.layer(15, h, relu=False)
        out = torch.tanh(h) * 150 + 255.0 / 2
        out = out.clamp(0, 255)
        return out[:, :, : image.shape[2], : image.shape[3]]


def self_check(device, dtype):
    """The autograd transposed conv agrees with PyTorch's conv_transpose2d
    under the 'SAME' crop (two readings of the README that must coincide)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 5, 7, 6, generator=g, dtype=torch.float64).to(device, dtype)
    filt = torch.randn(3, 3, 4, 5, generator=g, dtype=torch.float64).to(device, dtype)
    a = conv_transpose_same(x, filt)
    full = F.conv_transpose2d(x, filt.permute(3, 2, 0, 1), stride=2)  # [1, 4, 15, 13]
    b = full[:, :, :14, :12]  # 'SAME' pads (0, 1): nothing off the top, one row off the bottom
    assert torch.allclose(a, b, atol=1e-5), "transposed-conv self-check failed"


# ---- images ---------------------------------------------------------------------
def read_npy_image(path):
    a = np.load(path)
    if a.ndim == 3:
        a = a[None]
    assert a.ndim == 4 and a.shape[:2] == (1, 3), f"{path}: shape {a.shape}"
    return a.astype(np.float32)


def save_npy(path, array):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    np.save(path, np.ascontiguousarray(array, dtype=np.float32))


def load_photo(path, max_size=None, size=None):
    from PIL import Image
    img = Image.open(path).convert("RGB")
    if size is not None:
        img = img.resize(size, Image.LANCZOS)
    elif max_size and max(img.size) > max_size:
        s = max_size / max(img.size)
        img = img.resize((max(1, round(img.size[0] * s)), max(1, round(img.size[1] * s))),
                         Image.LANCZOS)
    a = np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(a)


def photos(content_dir):
    return sorted(f for f in os.listdir(content_dir) if f.lower().endswith(IMAGE_EXTS))


def networks(pretrained_dir):
    return sorted(d for d in os.listdir(pretrained_dir)
                  if os.path.isfile(os.path.join(pretrained_dir, d, "manifest.json")))


def stem(name):
    return os.path.splitext(name)[0]


def psnr(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


# ---- commands -----------------------------------------------------------------------
def cmd_inputs(args):
    for name in photos(args.content):
        a = load_photo(os.path.join(args.content, name), max_size=args.max_size)
        save_npy(os.path.join(args.out, stem(name) + ".npy"), a)
        print(f"{name}: {a.shape[3]}x{a.shape[2]}")


def run_all(args, inputs, out_path):
    dtype = getattr(torch, args.dtype)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    self_check(args.device, dtype)
    for net_name in networks(args.pretrained):
        net = FastStyleNet(os.path.join(args.pretrained, net_name), args.device, dtype)
        for name, array in inputs:
            x = torch.from_numpy(array).to(args.device, dtype)
            y = net(x).float().cpu().numpy()
            save_npy(out_path(net_name, name), y)
            print(f"{net_name}/{name}: {y.shape[3]}x{y.shape[2]}")


def cmd_run(args):
    names = sorted(f for f in os.listdir(args.inputs) if f.endswith(".npy"))
    inputs = [(stem(f), read_npy_image(os.path.join(args.inputs, f))) for f in names]
    run_all(args, inputs, lambda net, name: os.path.join(args.out, net, name + ".npy"))


def cmd_small(args):
    cases, inputs = [], []
    for name in photos(args.content):
        size = SMALL_SIZES.get(stem(name), (64, 48))
        a = load_photo(os.path.join(args.content, name), size=size)
        save_npy(os.path.join(args.out, stem(name) + ".npy"), a)
        inputs.append((stem(name), a))
    run_all(args, inputs, lambda net, name: os.path.join(args.out, f"{name}.{net}.npy"))
    for name, _ in inputs:
        cases.append({"input": name + ".npy",
                      "outputs": {net: f"{name}.{net}.npy" for net in networks(args.pretrained)}})
    index = {"generator": "tools/reference/fast_style_reference.py small",
             "torch": torch.__version__, "dtype": args.dtype, "min_psnr_db": 50.0,
             "note": "inputs: photos resized with PIL (LANCZOS), 0..255; outputs: reference "
                     "network outputs, clipped, cropped to the input size",
             "cases": cases}
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")


def cmd_compare(args):
    worst, failed, rows = math.inf, 0, 0
    for net in sorted(os.listdir(args.ref)):
        ref_dir = os.path.join(args.ref, net)
        if not os.path.isdir(ref_dir):
            continue
        for f in sorted(os.listdir(ref_dir)):
            if not f.endswith(".npy"):
                continue
            ref = read_npy_image(os.path.join(ref_dir, f))
            ours_path = os.path.join(args.ours, net, f)
            if not os.path.exists(ours_path):
                print(f"{net}/{f}: MISSING {ours_path}")
                failed += 1
                continue
            ours = read_npy_image(ours_path)
            if ours.shape != ref.shape:
                print(f"{net}/{f}: SHAPE {ours.shape} vs reference {ref.shape}")
                failed += 1
                continue
            p = psnr(np.clip(ours, 0, 255), ref)
            worst = min(worst, p)
            rows += 1
            ok = p >= args.min_psnr
            failed += not ok
            print(f"{net}/{f}: {p:.1f} dB, max |diff| {np.abs(ours - ref).max():.4f}"
                  f"{'' if ok else '  BELOW ' + str(args.min_psnr)}")
    print(f"{rows} compared, worst {worst:.1f} dB, {failed} failed")
    return 1 if failed or rows == 0 else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        sp.add_argument("--pretrained", required=True, help="dir of <style>/manifest.json exports")
        sp.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        sp.add_argument("--dtype", default="float64", choices=["float64", "float32"])

    sp = sub.add_parser("inputs", help="photos -> .npy inputs (optionally shrunk)")
    sp.add_argument("--content", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--max-size", type=int, default=None)
    sp = sub.add_parser("run", help="every network on every .npy input")
    common(sp)
    sp.add_argument("--inputs", required=True)
    sp.add_argument("--out", required=True)
    sp = sub.add_parser("small", help="the small set for CPU CTest (tests/data/fast_style_ref)")
    common(sp)
    sp.add_argument("--content", required=True)
    sp.add_argument("--out", required=True)
    sp = sub.add_parser("compare", help="PSNR of nst's outputs against the reference")
    sp.add_argument("--ref", required=True, help="the 'run' output dir: <style>/<photo>.npy")
    sp.add_argument("--ours", required=True, help="nst outputs: <style>/<photo>.npy")
    sp.add_argument("--min-psnr", type=float, default=50.0)

    args = p.parse_args()
    if args.command == "inputs":
        return cmd_inputs(args)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "small":
        return cmd_small(args)
    return cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main() or 0)
