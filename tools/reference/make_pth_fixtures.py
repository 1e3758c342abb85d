#!/usr/bin/env python3
"""Small PyTorch checkpoints in each container torch.save has used, for
tests/test_pth.cpp (weights/pth.cpp reads them in C++).

Run where PyTorch is installed (the GPU machine), then commit the output:

    python3 tools/reference/make_pth_fixtures.py tests/data/pth

writes
    small_zip.pth     torch.save(sd, f): the zip container (PyTorch >= 1.6)
    small_legacy.pth  torch.save(sd, f, _use_new_zipfile_serialization=False):
                      the legacy stream (torchvision's vgg19-dcbb9e9d.pth)
    small_tar.pth     the tar container of PyTorch 0.1.x (early 2017, probably
                      the Caffe-converted vgg19-d01eb7cb.pth). PyTorch cannot
                      write it any more, so write_tar_checkpoint() below writes
                      it by hand, following torch/serialization.py's old _save
                      and legacy_load; the script then checks that today's
                      torch.load reads it back (it still has the tar reader).
    expected.json     per file: the container and every tensor's shape and
                      values (as float32, row-major)

The state dict is VGG-like (features.N.weight/bias with tiny channel counts)
plus the awkward cases: views with strides and offsets sharing one storage,
a 0-dim tensor, float64, float16 and bfloat16.

write_tar_checkpoint() needs no PyTorch: the storage and tensor types appear
in its pickles only as names (GLOBAL opcodes assembled here).
"""
import collections
import json
import os
import pickle
import struct
import sys
import tarfile
import tempfile


# ---- the tar container, by hand ---------------------------------------------


class _Global:
    """A GLOBAL opcode (module.name) without importing anything."""

    def __init__(self, module, name):
        self.module, self.name = module, name


def _pickle_tuple(*items):
    """A protocol-2 pickle of a tuple whose items are ints, strs or _Globals."""
    out = bytearray(b"\x80\x02(")  # PROTO 2, MARK
    for item in items:
        if isinstance(item, _Global):
            out += b"c" + f"{item.module}\n{item.name}\n".encode()
        else:
            out += pickle.dumps(item, protocol=2)[2:-1]  # the item's opcodes, without PROTO and STOP
    out += b"t."  # TUPLE, STOP
    return bytes(out)


class _TensorKey:
    """Stands for a tensor in the 'pickle' member: pickled as its persistent id."""

    def __init__(self, key):
        self.key = key


def write_tar_checkpoint(path, state, tensors, storages, views=()):
    """The layout of PyTorch 0.1.x's torch.save: a PAX tar with members
    sys_info, pickle, tensors, storages.

    state:    the object to save (dicts, ints, ...), tensors as _TensorKey(key)
    tensors:  {key: (storage_key, tensor_type_name, size, stride, offset)}
    storages: {key: (storage_type_name, little-endian bytes, element count)}
    views:    [(view_key, root_storage_key, offset, element count)]
    Keys are ints (the saving process's pointers then); persistent ids in the
    'pickle' member are their decimal strings, as the old persistent_id wrote.
    """

    def sys_info(f):
        info = dict(protocol_version=1000, little_endian=True, type_sizes=dict(short=2, int=4, long=8))
        pickle.dump(info, f, protocol=2)

    def pickle_objects(f):
        pickler = pickle.Pickler(f, protocol=2)
        pickler.persistent_id = lambda obj: str(obj.key) if isinstance(obj, _TensorKey) else None
        pickler.dump(state)

    def save_tensors(f):
        pickle.dump(len(tensors), f, protocol=2)
        for key, (storage_key, type_name, size, stride, offset) in tensors.items():
            f.write(_pickle_tuple(key, storage_key, _Global("torch", type_name)))
            # THTensor metadata: ndim as a C long, then sizes, strides, offset
            f.write(struct.pack("<q", len(size)))
            f.write(struct.pack(f"<{len(size)}q", *size))
            f.write(struct.pack(f"<{len(stride)}q", *stride))
            f.write(struct.pack("<q", offset))

    def save_storages(f):
        pickle.dump(len(storages), f, protocol=2)
        for key, (type_name, data, numel) in storages.items():
            f.write(_pickle_tuple(key, "cpu", _Global("torch", type_name)))
            f.write(struct.pack("<q", numel))  # THStorage's raw file format: count, then data
            f.write(data)
        pickle.dump(list(views), f, protocol=2)

    with open(path, "wb") as out, tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, write in (("sys_info", sys_info), ("pickle", pickle_objects),
                            ("tensors", save_tensors), ("storages", save_storages)):
            with tempfile.NamedTemporaryFile(delete=False) as tmp:
                write(tmp)
            try:
                tar.add(tmp.name, arcname=name)
            finally:
                os.remove(tmp.name)


# ---- with PyTorch -------------------------------------------------------------


def state_dict(torch):
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["features.0.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["features.0.bias"] = torch.randn(4, generator=g)
    sd["features.2.weight"] = torch.randn(5, 4, 3, 3, generator=g)
    sd["features.2.bias"] = torch.randn(5, generator=g)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) + 0.5
    sd["strided"] = base.t()  # stride (1, 6)
    sd["strided_offset"] = base[1:, ::2]  # offset 6, stride (6, 2)
    sd["shared_row"] = base[2]  # the same storage again
    sd["double"] = torch.randn(3, 2, dtype=torch.float64, generator=g)
    sd["half"] = torch.randn(7, generator=g).half()
    sd["bfloat16"] = torch.randn(5, generator=g).bfloat16()
    sd["scalar"] = torch.tensor(3.25)
    return sd


def expected(tensors):
    return {
        name: {"shape": list(t.shape), "values": [float(v) for v in t.detach().float().reshape(-1).tolist()]}
        for name, t in tensors.items()
    }


def storage_bytes(torch, t):
    s = t.untyped_storage()
    flat = torch.empty(0, dtype=t.dtype).set_(s, 0, (s.nbytes() // t.element_size(),), (1,))
    return flat.view(torch.uint8).numpy().tobytes()


def write_tar_from_torch(torch, path, sd):
    """sd's float32/64/16 tensors of one or more dimensions (0.1.x had neither
    bfloat16 nor 0-dim tensors) plus one tensor on a
    storage view, in the tar container; returns the tensors it holds."""
    type_names = {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half"}
    base_key = 94000000000000  # pointer-like keys, beyond 32 bits as they were
    storage_keys, storages, tensors, state, held = {}, {}, {}, collections.OrderedDict(), {}
    for i, (name, t) in enumerate(sd.items()):
        if t.dtype not in type_names or t.dim() == 0:  # 0.1.x had neither bfloat16 nor 0-dim tensors
            continue
        ptr = t.untyped_storage().data_ptr()
        if ptr not in storage_keys:
            storage_keys[ptr] = base_key + 64 * len(storage_keys)
            data = storage_bytes(torch, t)
            storages[storage_keys[ptr]] = (type_names[t.dtype] + "Storage", data, len(data) // t.element_size())
        key = base_key + 1000000 + 48 * i
        tensors[key] = (storage_keys[ptr], type_names[t.dtype] + "Tensor", list(t.shape), list(t.stride()),
                        t.storage_offset())
        state[name] = _TensorKey(key)
        held[name] = t
    # A storage view (elements [6, 18) of `strided`'s storage) and a tensor on it.
    root_key = storage_keys[sd["strided"].untyped_storage().data_ptr()]
    view_key = base_key + 7 * 64
    tensors[base_key + 2000000] = (view_key, "FloatTensor", [3], [2], 1)
    state["on_view"] = _TensorKey(base_key + 2000000)
    root = sd["strided"].t().reshape(-1)  # the storage's elements in order
    held["on_view"] = root[6 + 1:6 + 6:2]
    state["epoch"] = 7  # not a tensor: readers skip it
    write_tar_checkpoint(path, state, tensors, storages, views=[(view_key, root_key, 6, 12)])
    return held


def main():
    import torch

    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/pth"
    os.makedirs(out, exist_ok=True)
    sd = state_dict(torch)
    files = {}

    torch.save(sd, os.path.join(out, "small_zip.pth"))
    files["small_zip.pth"] = {"container": "zip", "tensors": expected(sd)}
    torch.save(sd, os.path.join(out, "small_legacy.pth"), _use_new_zipfile_serialization=False)
    files["small_legacy.pth"] = {"container": "legacy", "tensors": expected(sd)}
    held = write_tar_from_torch(torch, os.path.join(out, "small_tar.pth"), sd)
    files["small_tar.pth"] = {"container": "tar", "tensors": expected(held)}

    # PyTorch reads its own files back (required), and its legacy_load reads
    # our hand-written tar (a cross-check of the layout, reported).
    torch_reads_tar = None
    for name, info in files.items():
        want = sd if name != "small_tar.pth" else held
        try:
            loaded = torch.load(os.path.join(out, name), weights_only=False)
            tensors = {k: v for k, v in loaded.items() if torch.is_tensor(v)}
            assert set(tensors) == set(want), (name, sorted(tensors), sorted(want))
            for k, t in want.items():
                assert torch.equal(tensors[k].float(), t.float()), (name, k)
        except Exception as e:  # noqa: BLE001 - reported, then re-raised unless it is the tar
            if name != "small_tar.pth":
                raise
            torch_reads_tar = f"no: {type(e).__name__}: {e}"
            print(f"warning: torch.load could not check {name}: {torch_reads_tar}")
            continue
        if name == "small_tar.pth":
            torch_reads_tar = "yes"
        print(f"{name}: {info['container']}, {len(tensors)} tensors, torch.load agrees")

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"torch_version": torch.__version__, "torch_reads_tar": torch_reads_tar, "files": files},
                  f, indent=1)
    print(f"wrote {out}/expected.json")


if __name__ == "__main__":
    main()
