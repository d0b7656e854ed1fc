#!/usr/bin/python3
"""Integration tests of --reshard M of RecIS checkpoints, into safetensors files and model.h5 (HugeCTR's are in
hugectr_test.py).

    reshard_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  layout    M = 1, 5 and 7 (neither divides 65536): file m holds part m of every table and nothing else (dense
            tensors in file 0), its tensorkey.json slice is RecIS's gen_slice(m, M); each part's ids in order
            (source parts in slice order, then their row order), every slot's row equal to the source's by id; the
            same files at np 1, 2 and 3; verify passes; the manifest counts M parts
  combined  --reshard 7 with eviction and int8 embeddings: the kept ids only, each in its part, PyTorch's int8
  bad       M = 0 and 65537 are refused (exit 2); a step_filter tensor whose rows differ from its part's id is
            exit 3 naming the part; nothing is published
  hdf5      into model.h5, with and without eviction: the M parts in order, the parts dataset, rows by id
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eviction_test import part_decisions, rows_by_id  # noqa: E402
from export_test import (check, data_files, expect_failure, expect_success, fresh, latest_checkpoint,  # noqa: E402
                         mpirun, read_safetensors, run_cases, tree_digest)
from serving_dtype_test import as_float32, tensors_by_part  # noqa: E402

SLICE_SIZE = 65536


def gen_slice(index, count, size=SLICE_SIZE):
    """RecIS's gen_slice: the first size % count ranges are one longer."""
    base, longer = divmod(size, count)
    begin = index * (base + 1) if index < longer else longer * (base + 1) + (index - longer) * base
    return begin, begin + base + (1 if index < longer else 0)


def slice_string(index, count):
    begin, end = gen_slice(index, count)
    width = len(str(SLICE_SIZE))
    return f"{begin:0{width}d}@{end:0{width}d}@{SLICE_SIZE}"


def part_of_id(i, count):
    position = int(i) % SLICE_SIZE  # Python's % of a negative id is the unsigned residue too (2^64 % 65536 == 0)
    for m in range(count):
        begin, end = gen_slice(m, count)
        if begin <= position < end:
            return m
    raise AssertionError("no part")


def expected_order(ckpt, count, keep_of=None):
    """table -> [ids of part m in export order]: source parts in slice order, then their row order."""
    parts = tensors_by_part(ckpt)
    out = {}
    for (table, slice_, part, slot), (entry, raw) in sorted(parts.items(), key=lambda kv: (kv[0][0], int(kv[0][1].split("@")[0]))):
        if slot != "id":
            continue
        ids = np.frombuffer(raw, dtype="<i8")
        keep = keep_of[(table, part)] if keep_of else np.ones(len(ids), dtype=bool)
        target = out.setdefault(table, [[] for _ in range(count)])
        for i in ids[keep]:
            target[part_of_id(i, count)].append(int(i))
    return out


def export(args, np_, out, extra):
    return mpirun(args.binary, np_, ["--ckpt-dir", args.fixture, "--export-dir", out] + extra)


def check_layout(out, ckpt, count, want_order, what):
    """The files, their tensors, the tensorkey slices and the ids of every part in order."""
    names = [f"model-{m:06d}-of-{count:06d}.safetensors" for m in range(count)]
    check(data_files(out) == names, f"{what}: files {data_files(out)}")
    with open(os.path.join(out, "tensorkey.json"), encoding="utf-8") as f:
        tensorkey = json.load(f)
    with open(os.path.join(out, "index"), encoding="utf-8") as f:
        index = json.load(f)
    for m, name in enumerate(names):
        header, _, data = read_safetensors(os.path.join(out, name))
        for key, entry in header.items():
            if key.endswith("^ "):
                check(m == 0, f"{what}: dense tensor {key} in file {m}")
                continue
            check(key.endswith(f"/part_{m}_{count}"), f"{what}: {key} in file {m}")
            check(tensorkey[key].endswith("^" + slice_string(m, count)), f"{what}: {key} is {tensorkey[key]}")
            check(index["block_index"][key] == m, f"{what}: index places {key} in file {index['block_index'][key]}")
            if "." + "id/" in key:
                table = key[:key.rindex(".id/")]
                begin, end = entry["data_offsets"]
                ids = np.frombuffer(data[begin:end], dtype="<i8").tolist()
                check(ids == want_order[table][m], f"{what}: {key} has ids {ids[:8]}..., expected "
                                                   f"{want_order[table][m][:8]}... ({len(want_order[table][m])})")
                check(all(part_of_id(i, count) == m for i in ids), f"{what}: an id of {key} is outside its slice")
        for table in want_order:
            check(f"{table}.id/part_{m}_{count}" in header, f"{what}: file {m} has no part of {table} (even empty)")


def case_layout(args):
    ckpt = latest_checkpoint(args.fixture)
    source = rows_by_id(ckpt)
    source_dense = {}
    for name in data_files(ckpt):
        header, _, data = read_safetensors(os.path.join(ckpt, name))
        for key, entry in header.items():
            if key.endswith("^ "):
                begin, end = entry["data_offsets"]
                source_dense[key] = data[begin:end]
    for count, extra in ((1, []), (5, ["--filter-optimizer"]), (7, [])):
        options = ["--reshard", str(count)] + extra
        digests = {}
        for np_ in (1, 2, 3):
            out = os.path.join(fresh(args.work, f"m{count}_np{np_}"), "export")
            expect_success(export(args, np_, out, options), f"{options} at np {np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[2] == digests[1] and digests[3] == digests[1], f"{options}: np 2 or 3 differ from np 1")
        check_layout(out, ckpt, count, expected_order(ckpt, count), " ".join(options))
        got = rows_by_id(out)
        check(set(got) == set(source), f"{options}: tables {sorted(got)}")
        for table, slots in got.items():
            for slot, rows in slots.items():
                check(set(rows) == set(source[table]["id"]), f"{options} {table}.{slot}: not every id")
                for i, row in rows.items():
                    check(row == source[table][slot][i], f"{options} {table}.{slot}: id {i} differs from the source")
            if "--filter-optimizer" in extra:
                check(not any(s.startswith("sparse_") for s in slots), f"{options} {table}: optimizer slots kept")
        header, _, data = read_safetensors(os.path.join(out, data_files(out)[0]))
        dense = {k: data[e["data_offsets"][0]:e["data_offsets"][1]] for k, e in header.items() if k.endswith("^ ")}
        check(dense == ({} if extra else source_dense), f"{options}: dense tensors {sorted(dense)}")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {options}")
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        for table, entry in manifest["tables"].items():
            check(entry["parts"] == count and entry["rows"] == len(source[table]["id"]),
                  f"{options} manifest {table}: {entry}")
        check(manifest["options"]["reshard"] == count, f"{options}: manifest options {manifest['options']}")
        print(f"ok: --reshard {count} {' '.join(extra)}: every part in its file, ids in order, rows equal by id, "
              "same files at np 1-3, verify passes")


def case_combined(args):
    import torch
    ckpt = latest_checkpoint(args.fixture)
    global_step = int(os.path.basename(ckpt).split("_")[1])
    source = rows_by_id(ckpt)
    layouts = {t: (e["dtype"], e["shape"][1]) for (t, _, _, slot), (e, _) in tensors_by_part(ckpt).items()
               if slot == "embedding"}
    keep_of = {(table, part): keep for table, part, _, keep, _ in part_decisions(ckpt, global_step, older_than=100)}
    options = ["--reshard", "7", "--evict-older-than", "100", "--quantize-embeddings", "int8", "--filter-optimizer"]
    digests = {}
    for np_ in (1, 3):
        out = os.path.join(fresh(args.work, f"combined_np{np_}"), "export")
        expect_success(export(args, np_, out, options), f"{options} at np {np_}")
        digests[np_] = tree_digest(out, skip=("run_record.json",))
    check(digests[1] == digests[3], "np 1 and np 3 differ")
    want = expected_order(ckpt, 7, keep_of)
    check_layout(out, ckpt, 7, want, "combined")
    got = rows_by_id(out)
    for table, slots in got.items():
        kept = {i for part in want[table] for i in part}
        for slot, rows in slots.items():
            check(set(rows) == kept, f"combined {table}.{slot}: not the kept ids")
            for i, row in rows.items():
                if slot != "embedding":
                    check(row == source[table][slot][i], f"combined {table}.{slot}: id {i} differs from the source")
                    continue
                dtype, dim = layouts[table]
                ref = as_float32(source[table]["embedding"][i], dtype, [1, dim])
                theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(ref.copy())).numpy().tobytes()
                check(row == theirs, f"combined {table}: id {i} is not PyTorch's int8 of the source row")
    expect_success(mpirun(args.binary, args.np, ["verify", out]), "verify combined")
    print(f"ok: {' '.join(options)}: the kept ids in their parts, int8 as PyTorch's, same files at np 1 and 3")


def shrink_tensor(path, key, rows):
    """Rewrites a data file with `rows` fewer rows of `key` (a valid file, whose tensor now disagrees)."""
    header, _, data = read_safetensors(path)
    pieces, offset = [], 0
    for k, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        raw = data[begin:end]
        if k == key:
            width = len(raw) // entry["shape"][0]
            entry["shape"][0] -= rows
            raw = raw[:len(raw) - rows * width]
        entry["data_offsets"] = [offset, offset + len(raw)]
        offset += len(raw)
        pieces.append(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (8 - len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(pieces))


def case_bad(args):
    out = os.path.join(args.work, "out")
    for options, text in ((["--reshard", "0"], "--reshard"),
                          (["--reshard", "65537"], "--reshard")):
        expect_failure(export(args, args.np, out, options), 2, text, " ".join(options))
        check(not os.path.exists(out), f"{options}: an export was made")
    # a step_filter slot whose rows differ from the part's id: exit 3 naming the part, with and without resharding
    parent = fresh(args.work, "mismatch")
    root = os.path.join(parent, "ckpt")
    shutil.copytree(args.fixture, root)
    ckpt = latest_checkpoint(root)
    for name in data_files(ckpt):
        header, _, _ = read_safetensors(os.path.join(ckpt, name))
        victim = next((k for k in header if k.startswith("user_id.step_filter/")), None)
        if victim:
            shrink_tensor(os.path.join(ckpt, name), victim, 1)
            break
    part = victim.rsplit("/", 1)[1]
    for options in (["--evict-older-than", "100"], ["--evict-older-than", "100", "--reshard", "4"]):
        result = mpirun(args.binary, args.np, ["--ckpt-dir", root, "--export-dir", out] + options)
        expect_failure(result, 3, part, " ".join(options) + " with a short step_filter")
        check("user_id" in result.stderr, f"{options}: the error does not name the table:\n{result.stderr}")
        check(not os.path.exists(out), f"{options}: an export was made")
    print("ok: M = 0 and 65537 refused; a short step_filter is exit 3 naming the part; nothing published")


def case_hdf5(args):
    """--reshard into model.h5: each table's datasets hold the M parts in order, each part's ids in the order the
    safetensors export has them, every slot equal to the source by id; the parts dataset describes the M parts;
    the same file at np 1 and 3."""
    os.environ.pop("OMPI_COMM_WORLD_SIZE", None)  # Debian's h5py would pick its MPI build under mpirun
    import h5py
    ckpt = latest_checkpoint(args.fixture)
    global_step = int(os.path.basename(ckpt).split("_")[1])
    source = rows_by_id(ckpt)
    for count, extra, rules in ((3, [], None), (5, ["--evict-older-than", "100", "--filter-optimizer"], 100)):
        options = ["--reshard", str(count), "--format", "hdf5"] + extra
        digests = {}
        for np_ in (1, 3):
            out = os.path.join(fresh(args.work, f"hdf5_m{count}_np{np_}"), "export")
            expect_success(export(args, np_, out, options), f"{options} at np {np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[1] == digests[3], f"{options}: model.h5 differs between np 1 and 3")
        keep_of = None
        if rules is not None:
            keep_of = {(t, p): keep for t, p, _, keep, _ in part_decisions(ckpt, global_step, older_than=rules)}
        want = expected_order(ckpt, count, keep_of)
        with h5py.File(os.path.join(out, "model.h5"), "r") as f:
            for table, group in f["sparse"].items():
                ids = [int(i) for i in group["id"][:]]
                check(ids == [i for part in want[table] for i in part], f"{options} {table}: ids not in part order")
                first = 0
                parts = group["parts"][:].tolist()
                check(len(parts) == count, f"{options} {table}: {len(parts)} parts")
                for m, row in enumerate(parts):
                    begin, end = gen_slice(m, count)
                    check(row == [begin, end, SLICE_SIZE, first, len(want[table][m])],
                          f"{options} {table}: part {m} is {row}")
                    first += len(want[table][m])
                for slot in group:
                    if slot in ("id", "parts"):
                        continue
                    rows = group[slot][:]
                    for n, i in enumerate(ids):
                        check(rows[n].tobytes() == source[table][slot][i], f"{options} {table}.{slot}: id {i} differs")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {options}")
        print(f"ok: {' '.join(options)}: every part in order in model.h5, rows equal by id, same file at np 1 and 3")


CASES = {"layout": case_layout, "combined": case_combined, "bad": case_bad, "hdf5": case_hdf5}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
