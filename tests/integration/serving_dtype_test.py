#!/usr/bin/python3
"""Integration tests of the serving dtypes (--quantize-embeddings, --quantize-table): every exported embedding
row, by id, against PyTorch's own conversion of the source row, in both export formats; the error figures of
manifest.json against the same figures computed here; serving ops on the exported bytes.

    serving_dtype_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  exact      (np given) each dtype, safetensors and hdf5: rows bit-exact with PyTorch (x.float().half(),
             .bfloat16(), embedding_bag_{byte,4bit,2bit}_prepack), other slots unchanged, manifest figures equal to
             Python's, PyTorch's serving ops give the same on our bytes as on its own prepack, verify passes
  cross_n    one job mixing every dtype (per-table overrides) at np 1, 2 and 3: identical files, figures included
  overrides  --quantize-table and its job-config list; an unknown table is exit 2 naming the tables there are
  bad        a dim int2 cannot pack, a NaN row, an fp16 overflow: exit 3 naming the table (and row or dim),
             nothing published, in both formats
"""
import json
import math
import os
import shutil
import subprocess
import sys

os.environ.pop("OMPI_COMM_WORLD_SIZE", None)  # Debian's h5py would pick its MPI build under mpirun
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (REPO_ROOT, run_cases, check, check_clean_parent, data_files, expect_failure,  # noqa: E402
                         expect_success, fresh, latest_checkpoint, mpirun, read_safetensors, tree_digest)

QUANTIZED = torch.ops.quantized
# dtype -> (manifest name, stored safetensors dtype, row width from dim)
DTYPES = {
    "fp16": ("fp16", "F16", lambda d: d),
    "bf16": ("bf16", "BF16", lambda d: d),
    "int8": ("int8_rowwise", "U8", lambda d: d + 8),
    "int4": ("int4_rowwise", "U8", lambda d: d // 2 + 4),
    "int2": ("int2_rowwise", "U8", lambda d: d // 4 + 4),
}
SOURCE_NUMPY = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "BF16": "<u2", "I64": "<i8"}
STORED_NUMPY = {"F16": "<f2", "BF16": "<u2", "U8": "u1"}


# --- PyTorch's side: the reference layouts, what they decode to, and the error figures -------------------------

def as_float32(raw, dtype, shape):
    """Source bytes as float32 rows, converted as the tool does (exactly, F64 rounded to nearest)."""
    array = np.frombuffer(raw, dtype=SOURCE_NUMPY[dtype]).reshape(shape)
    if dtype == "BF16":
        return torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    return array.astype(np.float32)


def pytorch_encoding(dtype, rows):
    """float32 rows [n, dim] -> (stored rows as a uint8 array [n, bytes], dequantized float32 rows)."""
    weight = torch.from_numpy(rows.copy())
    if dtype in ("fp16", "bf16"):
        stored = weight.half() if dtype == "fp16" else weight.bfloat16()
        as_bytes = np.ascontiguousarray(stored.view(torch.int16).numpy()).view(np.uint8)
        return as_bytes.reshape(len(rows), 2 * rows.shape[1]), stored.float().numpy()
    prepack, unpack = {"int8": (QUANTIZED.embedding_bag_byte_prepack, QUANTIZED.embedding_bag_byte_unpack),
                       "int4": (QUANTIZED.embedding_bag_4bit_prepack, QUANTIZED.embedding_bag_4bit_unpack),
                       "int2": (QUANTIZED.embedding_bag_2bit_prepack, QUANTIZED.embedding_bag_2bit_unpack)}[dtype]
    packed = prepack(weight)
    return packed.numpy(), unpack(packed).numpy()


def error_figures(source, restored):
    """The manifest's four figures over one table's rows, in the tool's arithmetic: each row's sums in element
    order in float64, the rows' sums added exactly (math.fsum rounds the exact sum once, as ExactSum does)."""
    x = source.astype(np.float64)
    d = restored.astype(np.float64) - x
    if d.size == 0:
        return {"max_abs": 0.0, "mean_abs": 0.0, "rmse": 0.0, "max_row_rel_l2": 0.0}
    row_abs = np.add.accumulate(np.abs(d), axis=1)[:, -1]
    row_sq = np.add.accumulate(d * d, axis=1)[:, -1]
    row_norm = np.add.accumulate(x * x, axis=1)[:, -1]
    nonzero = row_norm > 0
    rel = np.sqrt(row_sq[nonzero]) / np.sqrt(row_norm[nonzero])
    return {"max_abs": float(np.abs(d).max()), "mean_abs": math.fsum(row_abs) / d.size,
            "rmse": math.sqrt(math.fsum(row_sq) / d.size), "max_row_rel_l2": float(rel.max()) if rel.size else 0.0}


# --- our side: rows by id from either export format ------------------------------------------------------------

def tensors_by_part(directory):
    """(table, slice, part, slot) -> (header entry, bytes) of a RecIS-layout directory."""
    with open(os.path.join(directory, "tensorkey.json"), encoding="utf-8") as f:
        tensorkey = json.load(f)
    out = {}
    for name in data_files(directory):
        header, _, data = read_safetensors(os.path.join(directory, name))
        for key, entry in header.items():
            if key == "__metadata__" or key not in tensorkey:
                continue
            begin, end = entry["data_offsets"]
            tensor, slice_ = tensorkey[key].rsplit("^", 1)
            table, slot = tensor.rsplit("@", 1)
            out[(table, slice_, key.rsplit("/", 1)[1], slot)] = (entry, data[begin:end])
    return out


def source_rows(ckpt):
    """table -> (ids [n], float32 rows [n, dim], source dtype) of the checkpoint."""
    parts = tensors_by_part(ckpt)
    tables = {}
    for (table, slice_, part, slot), (entry, raw) in sorted(parts.items()):
        if slot != "embedding":
            continue
        ids = np.frombuffer(parts[(table, slice_, part, "id")][1], dtype="<i8")
        rows = as_float32(raw, entry["dtype"], entry["shape"])
        got = tables.setdefault(table, ([], [], entry["dtype"], entry["shape"][1]))
        got[0].append(ids)
        got[1].append(rows)
    return {t: (np.concatenate(ids), np.concatenate(rows), dtype, dim) for t, (ids, rows, dtype, dim) in tables.items()}


def exported_rows(export_dir):
    """table -> {id: stored row bytes} of a safetensors export."""
    parts = tensors_by_part(export_dir)
    out = {}
    for (table, slice_, part, slot), (entry, raw) in parts.items():
        if slot != "embedding":
            continue
        ids = np.frombuffer(parts[(table, slice_, part, "id")][1], dtype="<i8")
        rows = np.frombuffer(raw, dtype=STORED_NUMPY[entry["dtype"]]).reshape(entry["shape"])
        out.setdefault(table, {}).update({int(i): rows[n].tobytes() for n, i in enumerate(ids)})
    return out


def h5_rows(path):
    """table -> ({id: stored row bytes}, embedding dataset's dtype, its attributes, the group's embedding_dim)."""
    out = {}
    with h5py.File(path, "r") as f:
        for table, group in f["sparse"].items():
            dataset = group["embedding"]
            rows = dataset[:]
            ids = group["id"][:]
            out[table] = ({int(i): rows[n].tobytes() for n, i in enumerate(ids)}, dataset.dtype,
                          dict(dataset.attrs), int(group.attrs["embedding_dim"]))
    return out


def export(args, np_, out, extra, source=None, fmt="safetensors"):
    return mpirun(args.binary, np_, ["--ckpt-dir", source or args.fixture, "--export-dir", out, "--format", fmt,
                                     "--filter-optimizer", "--buffer-mib", "1"] + list(extra))


def check_table_against_pytorch(dtype, table, source, ours, what):
    """Every row of `ours` (id -> bytes) equals PyTorch's encoding of the source row; returns the figures."""
    ids, rows, _, _ = source
    stored, restored = pytorch_encoding(dtype, rows)
    check(len(ours) == len(ids), f"{what} {table}: {len(ours)} rows exported, the source has {len(ids)}")
    for n, i in enumerate(ids):
        check(ours[int(i)] == stored[n].tobytes(), f"{what} {table}: id {int(i)} differs from PyTorch's {dtype}")
    return error_figures(rows, restored), stored


def serving_proof(dtype, stored_ours, stored_theirs, what):
    """PyTorch's serving ops on our bytes and on its own prepack give the same results."""
    n = len(stored_ours)
    if n == 0:
        return
    indices = torch.arange(n)
    offsets = torch.tensor([0, n // 2]) if n > 1 else torch.tensor([0])
    if dtype in ("fp16", "bf16"):
        torch_dtype = torch.float16 if dtype == "fp16" else torch.bfloat16
        ours = torch.from_numpy(stored_ours.copy()).view(torch_dtype)
        theirs = torch.from_numpy(stored_theirs.copy()).view(torch_dtype)
        check(torch.equal(ours[indices.flip(0)].float(), theirs[indices.flip(0)].float()), f"{what}: gather differs")
        return
    op = {"int8": QUANTIZED.embedding_bag_byte_rowwise_offsets, "int4": QUANTIZED.embedding_bag_4bit_rowwise_offsets,
          "int2": QUANTIZED.embedding_bag_2bit_rowwise_offsets}[dtype]
    for mode in (0, 1):  # sum, mean
        got = op(torch.from_numpy(stored_ours.copy()), indices, offsets, mode=mode)
        want = op(torch.from_numpy(stored_theirs.copy()), indices, offsets, mode=mode)
        check(torch.equal(got, want), f"{what}: {op} mode {mode} differs on our bytes")


def check_manifest_table(manifest, table, dtype, source, figures, what):
    _, _, source_dtype, dim = source
    name, stored_dtype, _ = DTYPES[dtype]
    entry = manifest["tables"][table]
    check(entry.get("quantization") == name and entry["dim"] == dim and entry["dtype"] == stored_dtype
          and entry.get("source_dtype") == source_dtype, f"{what} {table}: manifest says {entry}")
    check(entry["quantization_error"] == figures,
          f"{what} {table}: error figures {entry['quantization_error']}, computed here {figures}")


def case_exact(args):
    ckpt = latest_checkpoint(args.fixture)
    source = source_rows(ckpt)
    checked = {}
    for dtype in DTYPES:
        parent = fresh(args.work, dtype)
        files, h5 = os.path.join(parent, "files"), os.path.join(parent, "h5")
        expect_success(export(args, args.np, files, ["--quantize-embeddings", dtype]), f"{dtype} export")
        expect_success(export(args, args.np, h5, ["--quantize-embeddings", dtype], fmt="hdf5"), f"{dtype} hdf5")
        ours, in_h5 = exported_rows(files), h5_rows(os.path.join(h5, "model.h5"))
        with open(os.path.join(files, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(h5, "manifest.json")) as f:
            h5_manifest = json.load(f)
        check(manifest["options"]["quantize_embeddings"] == DTYPES[dtype][0], f"{dtype}: {manifest['options']}")
        for table, rows in source.items():
            figures, stored = check_table_against_pytorch(dtype, table, rows, ours[table], f"{dtype} safetensors")
            by_id, h5_dtype, attrs, dim = in_h5[table]
            check(by_id == ours[table], f"{dtype} hdf5 {table}: rows differ from the safetensors export")
            check(attrs.get("quantization") == DTYPES[dtype][0] and dim == rows[3],
                  f"{dtype} hdf5 {table}: attributes {attrs}, embedding_dim {dim}")
            want_h5 = {"fp16": np.float16, "bf16": np.uint16}.get(dtype, np.uint8)
            check(h5_dtype == want_h5, f"{dtype} hdf5 {table}: dataset dtype {h5_dtype}")
            if dtype == "bf16":
                check(attrs.get("dtype") == "bfloat16", f"bf16 hdf5 {table}: dtype attribute {attrs.get('dtype')}")
            check_manifest_table(manifest, table, dtype, rows, figures, f"{dtype} safetensors")
            check_manifest_table(h5_manifest, table, dtype, rows, figures, f"{dtype} hdf5")
            ordered = np.stack([np.frombuffer(ours[table][int(i)], dtype=np.uint8) for i in rows[0]]) \
                if len(rows[0]) else stored
            serving_proof(dtype, ordered, stored, f"{dtype} {table}")
            checked[(dtype, table)] = figures
        # the other slots are copied as they are
        source_parts, export_parts = tensors_by_part(ckpt), tensors_by_part(files)
        for key, (entry, raw) in export_parts.items():
            if key[3] != "embedding":
                check(raw == source_parts[key][1], f"{dtype}: {key} changed")
        for out in (files, h5):
            expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify the {dtype} export {out}")
        inspected = subprocess.run([args.binary, "inspect", files], capture_output=True, text=True)
        check(inspected.returncode == 0 and "quantized tables" in inspected.stdout
              and f"-> {DTYPES[dtype][0]}, max_abs" in inspected.stdout, f"inspect:\n{inspected.stdout}")
        check_clean_parent(parent, ["files", "h5"])
    for (dtype, table), f in sorted(checked.items()):
        print(f"ok: {dtype:5s} {table:12s} max_abs {f['max_abs']:.4g} mean_abs {f['mean_abs']:.4g} "
              f"rmse {f['rmse']:.4g} max_row_rel_l2 {f['max_row_rel_l2']:.4g}")
    rows = sum(len(r[0]) for r in source.values())
    print(f"ok: {rows} rows x {len(DTYPES)} dtypes bit-exact with PyTorch in safetensors and model.h5 at np {args.np}")


MIXED = ["--quantize-embeddings", "int4", "--quantize-table", "user_id=int2", "--quantize-table", "item_id=fp16",
         "--quantize-table", "cate_ids=bf16", "--quantize-table", "商品_id=int8"]


def case_cross_n(args):
    for fmt in ("safetensors", "hdf5"):
        digests = {}
        for np_ in (1, 2, 3):
            out = os.path.join(fresh(args.work, f"{fmt}_np{np_}"), "export")
            expect_success(export(args, np_, out, MIXED, fmt=fmt), f"{fmt} mixed dtypes at np {np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json", "model.h5"))
            if fmt == "hdf5":
                with h5py.File(os.path.join(out, "model.h5"), "r") as f:
                    content = {}
                    f.visititems(lambda name, obj: content.__setitem__(name, obj[()].tobytes())
                                 if isinstance(obj, h5py.Dataset) else None)
                digests[np_]["model.h5 content"] = content
        for np_ in (2, 3):
            check(digests[np_] == digests[1], f"{fmt}: the export at np {np_} differs from np 1")
        with open(os.path.join(out, "manifest.json")) as f:
            tables = json.load(f)["tables"]
        got = {t: e.get("quantization") for t, e in tables.items()}
        check(got == {"user_id": "int2_rowwise", "item_id": "fp16", "cate_ids": "bf16", "商品_id": "int8_rowwise",
                      "empty_table": "int4_rowwise"}, f"{fmt}: quantization by table {got}")
    print("ok: every dtype in one job: identical files and error figures at np 1, 2 and 3, both formats")


def case_overrides(args):
    parent = fresh(args.work, "overrides")
    config = os.path.join(parent, "job.json")
    with open(config, "w") as f:
        json.dump({"quantize-embeddings": "int8", "quantize-table": ["item_id=none", "user_id=fp16"]}, f)
    out = os.path.join(parent, "export")
    expect_success(export(args, args.np, out, ["--config", config]), "--quantize-table from a job config")
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    tables = manifest["tables"]
    check("quantization" not in tables["item_id"] and tables["item_id"]["dtype"] == "F16", f"item_id: {tables['item_id']}")
    check(tables["user_id"]["quantization"] == "fp16" and tables["cate_ids"]["quantization"] == "int8_rowwise",
          f"tables: {tables}")
    check(manifest["options"]["quantize_tables"] == {"item_id": None, "user_id": "fp16"}, f"{manifest['options']}")
    with open(os.path.join(out, "run_record.json")) as f:
        recorded = json.load(f)["options"]
    check(recorded["quantize-table"] == ["item_id=none", "user_id=fp16"], f"run record options {recorded}")
    # an unknown table: exit 2 naming the tables there are, nothing published
    bad = os.path.join(parent, "bad")
    result = export(args, args.np, bad, ["--quantize-table", "user=int4"])
    expect_failure(result, 2, '--quantize-table "user": the checkpoint has no such table; it has "cate_ids", '
                              '"empty_table", "item_id", "user_id", "商品_id"', "unknown table")
    check(not os.path.exists(bad), "an export was published for an unknown table")
    check_clean_parent(parent, ["export", "job.json"])
    print("ok: per-table overrides from flags and a job config; an unknown table is refused by name")


def make_fixture(work, name, *options):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_fixture.py"), path] + list(options),
                   check=True, capture_output=True)
    return path


def poison(ckpt, table, row, value):
    """Writes float32 `value` into element 1 of embedding row `row` of the table's first part that has it."""
    parts = tensors_by_part(ckpt)
    for (t, slice_, part, slot), (entry, _) in sorted(parts.items()):
        if t == table and slot == "embedding" and entry["dtype"] == "F32" and entry["shape"][0] > row:
            key = f"{t}.embedding/{part}"
            for name in data_files(ckpt):
                header, raw, _ = read_safetensors(os.path.join(ckpt, name))
                if key in header:
                    begin = 8 + len(raw) + header[key]["data_offsets"][0] + (row * entry["shape"][1] + 1) * 4
                    with open(os.path.join(ckpt, name), "r+b") as f:
                        f.seek(begin)
                        f.write(np.float32(value).tobytes())
                    return key
    raise AssertionError(f"no F32 embedding of {table} with {row + 1} rows")


def case_bad(args):
    wide = make_fixture(args.work, "wide_fixture", "--table", "user_id:F32:8:100", "--table", "wide:F64:6:50")
    for fmt in ("safetensors", "hdf5"):
        parent = fresh(args.work, f"bad_{fmt}")
        result = export(args, args.np, os.path.join(parent, "export"), ["--quantize-embeddings", "int2"], wide, fmt)
        expect_failure(result, 3, 'table "wide" (embedding tensor "wide.embedding/part_', f"int2 of dim 6 ({fmt})")
        expect_failure(result, 3, "has dim 6: int2 needs a dim divisible by 4", f"int2 of dim 6 ({fmt})")
        check_clean_parent(parent, [])
        # int4 takes dim 6, and int2 takes it when that table stays float32
        expect_success(export(args, args.np, os.path.join(parent, "int4"), ["--quantize-embeddings", "int4"], wide,
                              fmt), f"int4 of dim 6 ({fmt})")
        expect_success(export(args, args.np, os.path.join(parent, "mixed"), ["--quantize-embeddings", "int2",
                                                                             "--quantize-table", "wide=none"], wide,
                              fmt), f"int2 with wide=none ({fmt})")
    for value, dtype, text in ((float("nan"), "int4", "holds a NaN or infinite value: it cannot be converted to int4"),
                               (1e5, "fp16", "holds values that fp16 cannot represent: they would become infinite")):
        root = os.path.join(fresh(args.work, f"src_{dtype}"), "output")
        shutil.copytree(args.fixture, root)
        key = poison(latest_checkpoint(root), "user_id", 1, value)
        before = tree_digest(root)
        for fmt in ("safetensors", "hdf5"):
            parent = fresh(args.work, f"bad_{dtype}_{fmt}")
            result = export(args, args.np, os.path.join(parent, "export"), ["--quantize-embeddings", dtype], root, fmt)
            expect_failure(result, 3, f'table "user_id", tensor "{key}" row 1 {text}', f"{dtype} of {value} ({fmt})")
            check_clean_parent(parent, [])
        check(tree_digest(root) == before, "the source was modified")
    print("ok: a dim the dtype cannot pack, a NaN, an fp16 overflow: exit 3 naming table and row, nothing published")


CASES = {"exact": case_exact, "cross_n": case_cross_n, "overrides": case_overrides, "bad": case_bad}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
