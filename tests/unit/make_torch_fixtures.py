#!/usr/bin/python3
"""Writes torch.save files for the torch_archive and zip_reader unit tests, with what each must read as.

    make_torch_fixtures.py OUT_DIR

Good files come with OUT_DIR/<name>.expected.json: for each tensor its dtype (safetensors spelling), shape,
is_parameter, and its contiguous little-endian bytes in hex. Bad files are crafted byte by byte (a pickle that
names os.system, an unknown opcode, a truncated or compressed archive, a missing or short storage, the legacy
format). Needs Debian's /usr/bin/python3 with python3-torch.
"""
import collections
import io
import json
import os
import sys
import zipfile

import torch

DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def raw_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_good(out, name, obj):
    torch.save(obj, os.path.join(out, name + ".pt"))
    expected = collections.OrderedDict()
    for key, t in obj.items():
        expected[key] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                         "is_parameter": isinstance(t, torch.nn.Parameter), "hex": raw_bytes(t).hex()}
    with open(os.path.join(out, name + ".expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries:
            z.writestr(name, data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(3)

    every_dtype = collections.OrderedDict()
    for dtype in DTYPES:
        if dtype.is_floating_point:
            every_dtype[f"t_{DTYPES[dtype].lower()}"] = torch.randn(3, 4).to(dtype)
        elif dtype == torch.bool:
            every_dtype["t_bool"] = torch.tensor([[True, False, True], [False, False, True]])
        else:
            every_dtype[f"t_{DTYPES[dtype].lower()}"] = torch.arange(-6 if dtype != torch.uint8 else 0, 6 if dtype != torch.uint8 else 12).to(dtype).reshape(3, 4)
    save_good(out, "every_dtype", every_dtype)

    save_good(out, "one_entry", {"only.weight": torch.randn(2, 3)})

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    save_good(out, "views", collections.OrderedDict([
        ("base", base), ("transposed", base.t()), ("column", base[:, 2]), ("rows", base[1:3]),
        ("strided", base[::2, 1::2]), ("empty", base[:0])]))

    save_good(out, "parameters", collections.OrderedDict([
        ("p", torch.nn.Parameter(torch.randn(3))), ("frozen", torch.nn.Parameter(torch.randn(2, 2), requires_grad=False))]))

    save_good(out, "scalars", collections.OrderedDict([("f", torch.tensor(1.5)), ("i", torch.tensor(7)),
                                                       ("b", torch.tensor(True))]))

    class Mlp(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU())

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_arch = Mlp()

    model_state = Model().state_dict()  # an OrderedDict with _metadata, as RecIS's model.pt
    save_good(out, "module_state_dict", model_state)

    # A scripted network (dense/weight_fill.h) and a checkpoint for it under "net.", with one key it does not use;
    # and one whose two attributes hold the same tensor (tied weights)
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
            self.bn = torch.nn.BatchNorm1d(2)

        def forward(self, x):
            return self.bn(self.mlp(x))

    torch.manual_seed(3)
    torch.jit.script(Net()).save(os.path.join(out, "scripted.pt"))
    weights = collections.OrderedDict((f"net.{k}", torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point()
                                       else torch.tensor(5)) for k, v in Net().state_dict().items())
    weights["net.unused"] = torch.zeros(1)
    torch.save(weights, os.path.join(out, "scripted_weights.pt"))

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(2, 2)
            self.b = torch.nn.Linear(2, 2)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    torch.jit.script(Tied()).save(os.path.join(out, "tied.pt"))
    torch.save({f"net.{k}": v for k, v in Tied().state_dict().items()}, os.path.join(out, "tied_weights.pt"))

    # A storage saved for cuda:0: the same bytes, the location string changed in data.pkl.
    entries = entries_of(os.path.join(out, "one_entry.pt"))
    cuda = [(n, d.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0") if n.endswith("data.pkl") else d)
            for n, d in entries]
    write_zip(os.path.join(out, "cuda_location.pt"), cuda)
    # the format version torch checks: a future one, and none at all (torch refuses both)
    write_zip(os.path.join(out, "future_version.pt"),
              [(n, b"11\n" if n.endswith("/version") else d) for n, d in entries])
    write_zip(os.path.join(out, "no_version.pt"), [(n, d) for n, d in entries if not n.endswith("version")])
    # the records torch 2.7+ adds (.format_version, .storage_alignment) and 2.x's .data/serialization_id: torch uses
    # them only to find records, which the zip directory gives; the tensors read the same
    folder = entries[0][0].split("/")[0]
    write_zip(os.path.join(out, "newer_records.pt"),
              entries + [(f"{folder}/.format_version", b"1"), (f"{folder}/.storage_alignment", b"64"),
                         (f"{folder}/.data/serialization_id", b"1234567890123456789012345678901234567890")])
    with open(os.path.join(out, "one_entry.expected.json")) as f:
        expected = f.read()
    with open(os.path.join(out, "cuda_location.expected.json"), "w") as f:
        f.write(expected)
    with open(os.path.join(out, "newer_records.expected.json"), "w") as f:
        f.write(expected)

    # zip64: more than 65535 entries force the zip64 end-of-directory records.
    filler = [(f"archive/extra/{i}", b"") for i in range(65536)]
    write_zip(os.path.join(out, "zip64.pt"), [(n.replace("one_entry/", "archive/"), d) for n, d in entries] + filler)
    with open(os.path.join(out, "zip64.expected.json"), "w") as f:
        f.write(expected)

    # --- bad files ---
    def pickle_archive(name, pickle_bytes, extra=()):
        write_zip(os.path.join(out, name + ".pt"), [("archive/data.pkl", pickle_bytes), ("archive/version", b"3\n")]
                  + list(extra))

    pickle_archive("os_system", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.")
    pickle_archive("builtins_eval", b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.")
    pickle_archive("unknown_opcode", b"\x80\x02}I1\n.")  # 'I' (text INT) is not in the subset
    pickle_archive("not_a_dict", b"\x80\x02]q\x00.")
    # {"x": [[[...]]]} nested 200,000 deep (EMPTY_LIST pushes, APPEND folds): freeing it recursively overflowed the
    # stack; and {"x": L} where L holds itself (memo), which reference counting would never free
    depth = 200_000
    pickle_archive("deep_nesting", b"\x80\x02}(X\x01\x00\x00\x00x" + b"]" * depth + b"a" * (depth - 1) + b"u.")
    pickle_archive("self_cycle", b"\x80\x02}(X\x01\x00\x00\x00x]q\x00h\x00au.")
    # 1.2M values (None) in one list: more than the reader builds for any state dict
    pickle_archive("too_many_values", b"\x80\x02}(X\x01\x00\x00\x00x](" + b"N" * 1_200_000 + b"eu.")
    good = open(os.path.join(out, "one_entry.pt"), "rb").read()
    with open(os.path.join(out, "truncated.pt"), "wb") as f:
        f.write(good[: len(good) // 2])
    write_zip(os.path.join(out, "missing_storage.pt"), [(n, d) for n, d in entries if not n.endswith("/data/0")])
    write_zip(os.path.join(out, "short_storage.pt"), [(n, d[:-4] if n.endswith("/data/0") else d) for n, d in entries])
    write_zip(os.path.join(out, "compressed.pt"), entries, compression=zipfile.ZIP_DEFLATED)
    torch.save({"w": torch.ones(2)}, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
    with open(os.path.join(out, "crc_mismatch.pt"), "wb") as f:  # flip one byte of the pickle's storage data
        data = bytearray(good)
        data[entries_offset(good, entries)] ^= 0xff
        f.write(bytes(data))

    write_global_step_checkpoints(os.path.join(out, "global_step"))


def write_global_step_checkpoints(out):
    """Checkpoint directories holding the global step in each of the places RecIS keeps it (global_step.h)."""
    def ckpt(*parts):
        path = os.path.join(out, *parts)
        os.makedirs(path)
        return path

    # model.pt: user by the current name (which wins over its legacy buffer), item by the legacy buffer only;
    # cate from extra.pt, which also holds the dense optimizer's nested state
    every = ckpt("every", "ckpt_300")
    torch.save(collections.OrderedDict([
        ("dense_arch.w", torch.randn(2, 2)),
        ("user@filter_global_step", torch.tensor(250)),
        ("model.user._hashtable._filter_hook_impl._global_step", torch.tensor(1)),
        ("model.item._hashtable._filter_hook_impl._global_step", torch.tensor(240, dtype=torch.int32))]),
        os.path.join(every, "model.pt"))
    torch.save({"global_step": torch.tensor(299), "train_epoch": torch.tensor(2),
                "recis.dense.optim.": {"state": {0: {"step": torch.tensor(3.0)}},
                                       "param_groups": [{"lr": 0.1, "params": [0]}]}},
               os.path.join(every, "extra.pt"))
    # RecIS v1.1 as it really writes: one EmbeddingEngine table's buffer (shape [1]), shared by its children, and a
    # plain HashTable's buffer keyed by its module; extra.pt lags behind, and the buffers win
    engine = ckpt("engine", "ckpt_6")
    torch.save(collections.OrderedDict([
        ("sparse_arch.engine._ht.CoalescedHashtable_6aa0._hashtable._filter_hook_impl._global_step",
         torch.tensor([6])),
        ("sparse_arch.bias._filter_hook_impl._global_step", torch.tensor([8])),
        ("dense_arch.w", torch.randn(2, 2))]), os.path.join(engine, "model.pt"))
    torch.save({"global_step": torch.tensor(4), "train_epoch": torch.tensor(0)}, os.path.join(engine, "extra.pt"))
    # two engine tables whose steps differ: which child belongs to which is unknown, so they take extra.pt
    disagree = ckpt("engines_disagree", "ckpt_7")
    torch.save(collections.OrderedDict([
        ("sparse_arch.engine._ht.CoalescedHashtable_aaaa._hashtable._filter_hook_impl._global_step",
         torch.tensor([5])),
        ("sparse_arch.engine._ht.CoalescedHashtable_bbbb._hashtable._filter_hook_impl._global_step",
         torch.tensor([7])),
        ("sparse_arch.bias._filter_hook_impl._global_step", torch.tensor([9]))]), os.path.join(disagree, "model.pt"))
    torch.save({"global_step": torch.tensor(7)}, os.path.join(disagree, "extra.pt"))
    ckpt("by_name", "ckpt_500")  # nothing but the directory's name
    ckpt("nowhere", "latest")    # no record at all
    bad = ckpt("not_an_integer", "ckpt_7")
    torch.save({"user@filter_global_step": torch.tensor([1.5])}, os.path.join(bad, "model.pt"))
    unreadable = ckpt("unreadable_extra", "ckpt_9")
    with open(os.path.join(unreadable, "extra.pt"), "wb") as f:
        f.write(b"not a zip archive")


def entries_offset(blob, entries):
    """Offset of the first byte of the storage data/0 in the archive bytes."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("/data/0"))
        local = info.header_offset
        name_len = int.from_bytes(blob[local + 26:local + 28], "little")
        extra_len = int.from_bytes(blob[local + 28:local + 30], "little")
        return local + 30 + name_len + extra_len


if __name__ == "__main__":
    main()
