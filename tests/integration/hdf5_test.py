#!/usr/bin/python3
"""Integration tests of --format hdf5: model.h5 written by all ranks with parallel HDF5, read back with plain
(serial) h5py and compared row by row with the source checkpoint.

    hdf5_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases: export (np given: every table, slot and part against the source, dense datasets against model.pt, filter
mode drops optimizer slots), cross_n (np 1-4 write identical files), bad (a failure publishes nothing). The serving
dtypes in model.h5 are tested in serving_dtype_test.py.
"""
import json
import os
import shutil
import sys

os.environ.pop("OMPI_COMM_WORLD_SIZE", None)  # Debian's h5py would pick its MPI build under mpirun
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, check, check_clean_parent, data_files, expect_failure, expect_success,  # noqa: E402
                         fresh, latest_checkpoint, mpirun, read_safetensors, tree_digest)

NUMPY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "I64": "<i8"}


def source_tables(ckpt):
    """child -> slot -> list of (slice, part rank, array) from the checkpoint's safetensors files."""
    with open(os.path.join(ckpt, "tensorkey.json"), encoding="utf-8") as f:
        tensorkey = json.load(f)
    tables, scalars = {}, {}
    for name in data_files(ckpt):
        header, _, data = read_safetensors(os.path.join(ckpt, name))
        for key, entry in header.items():
            begin, end = entry["data_offsets"]
            array = np.frombuffer(data[begin:end], dtype=NUMPY[entry["dtype"]]).reshape(entry["shape"])
            if key.endswith("^ "):
                scalars[key[:-2]] = array
                continue
            tensor, slice_ = tensorkey[key].rsplit("^", 1)
            child, slot = tensor.rsplit("@", 1)
            part_rank = int(key.rsplit("/part_", 1)[1].split("_")[0])
            tables.setdefault(child, {}).setdefault(slot, []).append((slice_, part_rank, array))
    return tables, scalars


def check_h5(path, ckpt, filtered):
    tables, scalars = source_tables(ckpt)
    with h5py.File(path, "r") as f:
        check(f.attrs["source_checkpoint"] == os.path.realpath(ckpt), "source_checkpoint attribute")
        check(sorted(f["sparse"].keys()) == sorted(tables), f"tables {sorted(f['sparse'].keys())}")
        for child, slots in tables.items():
            group = f["sparse"][child]
            kept = {s for s in slots if not (filtered and s.startswith("sparse_"))}
            check(set(group.keys()) == kept | {"parts"}, f"{child}: datasets {sorted(group.keys())}, expected {sorted(kept)}")
            parts = group["parts"][:]
            order = sorted(slots["id"], key=lambda p: (p[0], p[1]))
            first = 0
            for row, (slice_, _, ids) in zip(parts, order):
                begin, end, size = (int(x) for x in slice_.split("@"))
                check(list(row) == [begin, end, size, first, len(ids)], f"{child}: parts row {list(row)}")
                first += len(ids)
            check(len(parts) == len(order), f"{child}: {len(parts)} parts, expected {len(order)}")
            for slot in kept:
                dataset = group[slot]
                want = np.concatenate([a for _, _, a in sorted(slots[slot], key=lambda p: (p[0], p[1]))]) \
                    if first else np.zeros((0,) + slots[slot][0][2].shape[1:], dtype=slots[slot][0][2].dtype)
                got = dataset[:]
                check(got.shape == want.shape, f"{child}/{slot}: shape {got.shape} != {want.shape}")
                check(got.tobytes() == want.astype(got.dtype).tobytes() and got.dtype.itemsize == want.dtype.itemsize,
                      f"{child}/{slot}: data differs")
            # ids matched to rows: every id keeps its embedding row
            if "embedding" in kept and first:
                ids = group["id"][:]
                emb = group["embedding"][:]
                lookup = {}
                by_part = lambda p: (p[0], p[1])  # noqa: E731
                for (_, _, id_part), (_, _, emb_part) in zip(sorted(slots["id"], key=by_part),
                                                             sorted(slots["embedding"], key=by_part)):
                    for i, e in zip(id_part, emb_part):
                        lookup[int(i)] = e.tobytes()
                check(all(lookup[int(i)] == e.tobytes() for i, e in zip(ids, emb)), f"{child}: an id lost its row")
            attrs = group.attrs
            if "embedding" in kept:
                check(int(attrs["embedding_dim"]) == slots["embedding"][0][2].shape[-1], f"{child}: embedding_dim")
        dtype_attr = f["sparse"]["cate_ids"]["embedding"].attrs["dtype"]
        check(dtype_attr == "bfloat16", f"BF16 dtype attribute is {dtype_attr!r}")
        check(f["sparse"]["item_id"]["embedding"].dtype == np.float16, "F16 is not read as float16")
        if filtered:
            check("optimizer" not in f, "optimizer scalars were exported in filter mode")
        else:
            for name, value in scalars.items():
                check(f["optimizer"][name][()].tobytes() == value.tobytes(), f"optimizer scalar {name}")
        state = torch.load(os.path.join(ckpt, "model.pt"))
        for key, tensor in state.items():
            name = key[len("dense_arch."):] if key.startswith("dense_arch.") else key
            check(np.array_equal(f["dense"][name][()], tensor.numpy()), f"dense {name} differs from model.pt")


def export(args, np_, out, extra=(), source=None):
    return mpirun(args.binary, np_, ["--ckpt-dir", source or args.fixture, "--export-dir", out, "--format", "hdf5"]
                  + list(extra))


def case_export(args):
    ckpt = latest_checkpoint(args.fixture)
    for filtered, transfer in ((True, "collective"), (False, "independent")):
        parent = fresh(args.work, f"h5_{filtered}")
        out = os.path.join(parent, "export")
        extra = (["--filter-optimizer"] if filtered else []) + ["--hdf5-transfer", transfer]
        expect_success(export(args, args.np, out, extra), f"hdf5 export filtered={filtered}")
        check(sorted(os.listdir(out)) == ["manifest.json", "model.h5", "run_record.json"], f"export holds {os.listdir(out)}")
        check_h5(os.path.join(out, "model.h5"), ckpt, filtered)
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        check([m["name"] for m in manifest["metadata_files"]] == ["model.h5"], "manifest does not list model.h5")
        check_clean_parent(parent, ["export"])


def h5_content(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes()) if isinstance(obj, h5py.Dataset) else None)
    return out


def case_cross_n(args):
    contents = {}
    for np_ in (1, 2, 3, 4):
        out = os.path.join(fresh(args.work, f"h5_np{np_}"), "export")
        expect_success(export(args, np_, out, ["--filter-optimizer", "--buffer-mib", "1"]), f"hdf5 np={np_}")
        contents[np_] = h5_content(os.path.join(out, "model.h5"))
        with open(os.path.join(out, "model.h5"), "rb") as f:  # no timestamps in it: byte for byte too
            contents[np_]["the file's bytes"] = f.read()
    for np_ in (2, 3, 4):
        check(contents[np_] == contents[1], f"model.h5 of np={np_} differs from np=1")


def case_bad(args):
    root = os.path.join(fresh(args.work, "bad_src"), "output")
    shutil.copytree(args.fixture, root)
    ckpt = latest_checkpoint(root)
    victim = os.path.join(ckpt, data_files(ckpt)[1])
    os.truncate(victim, os.path.getsize(victim) - 1)
    before = tree_digest(root)
    parent = fresh(args.work, "bad")
    result = export(args, args.np, os.path.join(parent, "export"), source=root)
    expect_failure(result, 3, "truncated or trailing bytes", "truncated file with --format hdf5")
    check_clean_parent(parent, [])
    check(tree_digest(root) == before, "the source was modified")


CASES = {"export": case_export, "cross_n": case_cross_n, "bad": case_bad}


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
