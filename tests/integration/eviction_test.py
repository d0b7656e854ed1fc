#!/usr/bin/python3
"""Integration tests of row eviction (--evict-older-than, --evict-l2-below) of RecIS checkpoints, into safetensors
files and model.h5 (HugeCTR's are in hugectr_test.py, resharding in reshard_test.py).

    eviction_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  dry_run   the per-table counts equal an independent count in Python (step rule at its boundary, L2 rule in
            float32, both together), identical at np 1, 2 and 3
  clock     the global step's fallback chain: the filter hook's buffer, extra.pt, then ckpt_<step>; a checkpoint with no step_filter slot
            at all is exit 3
  export    every exported row by id: kept iff the rules say so, each slot equal to the source; the same files
            at np 1, 2 and 3; verify passes; the manifest's evicted rows and global step; with int8 embeddings the
            kept rows are PyTorch's
  hdf5      into model.h5: the kept rows of every dataset by id, the parts dataset's counts, np 1 and 3 identical
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (check, expect_failure, expect_success, fresh, latest_checkpoint, mpirun,  # noqa: E402
                         run_cases, tree_digest)
from serving_dtype_test import as_float32, make_fixture, tensors_by_part  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from make_fixture import FILTER_STEP_BUFFER  # noqa: E402

# where the fixtures' global step comes from: the filter hook's buffer, as RecIS v1.1 keys it (global_step.h)
FILTER_STEP_SOURCE = "model.pt " + FILTER_STEP_BUFFER

LINE = re.compile(r'evict (\d+) of (\d+) rows of "([^"]+)"')


def reported(result):
    """table -> (evicted, rows) from the tool's dry-run lines."""
    return {m.group(3): (int(m.group(1)), int(m.group(2))) for m in LINE.finditer(result.stderr + result.stdout)}


def part_decisions(ckpt, global_step, older_than=None, l2_below=None):
    """(table, part, ids, keep, applies) per part of the checkpoint, decided here from its own bytes: keep[i] for each row,
    and whether any rule applies to the part at all (a table without step_filter under the step rule alone)."""
    parts = tensors_by_part(ckpt)
    for (table, slice_, part, slot), (entry, raw) in parts.items():
        if slot != "embedding":
            continue
        ids = np.frombuffer(parts[(table, slice_, part, "id")][1], dtype="<i8")
        keep = np.ones(len(ids), dtype=bool)
        step_filter = parts.get((table, slice_, part, "step_filter"))
        if older_than is not None and step_filter is not None:
            keep &= (global_step - np.frombuffer(step_filter[1], dtype="<i8")) <= older_than
        if l2_below is not None and len(ids):
            x = as_float32(raw, entry["dtype"], entry["shape"])
            keep &= ~(np.sqrt(np.add.accumulate(x * x, axis=1)[:, -1]) < np.float32(l2_below))
        applies = l2_below is not None or (older_than is not None and step_filter is not None)
        yield table, part, ids, keep, applies


def expected_counts(ckpt, global_step, older_than=None, l2_below=None):
    """table -> (evicted, rows) over the parts a rule applies to, as --dry-run reports them."""
    out = {}
    for table, _, ids, keep, applies in part_decisions(ckpt, global_step, older_than, l2_below):
        if applies:
            evicted, total = out.get(table, (0, 0))
            out[table] = (evicted + int((~keep).sum()), total + len(ids))
    return out


def dry_run(args, np_, source, extra):
    return mpirun(args.binary, np_, ["--ckpt-dir", source, "--dry-run"] + extra)


def case_dry_run(args):
    ckpt = latest_checkpoint(args.fixture)
    global_step = int(os.path.basename(ckpt).split("_")[1])
    for extra, rules in ((["--evict-older-than", "100"], {"older_than": 100}),
                         (["--evict-older-than", "0"], {"older_than": 0}),
                         (["--evict-l2-below", "2.5"], {"l2_below": 2.5}),
                         (["--evict-older-than", "60", "--evict-l2-below", "1.5"], {"older_than": 60, "l2_below": 1.5})):
        want = expected_counts(ckpt, global_step, **rules)
        got = {}
        for np_ in (1, 2, 3):
            result = dry_run(args, np_, args.fixture, extra)
            check(result.returncode == 0, f"{extra} at np {np_}: exit {result.returncode}\n{result.stderr}")
            got[np_] = reported(result)
        check(got[1] == want, f"{extra}: reported {got[1]}, counted here {want}")
        check(got[2] == got[1] and got[3] == got[1], f"{extra}: np 2 or 3 report otherwise: {got}")
        print(f"ok: {' '.join(extra)}: {want}")
    # the boundary: a row exactly STEPS old stays
    steps = np.concatenate([np.frombuffer(raw, dtype="<i8") for (t, _, _, slot), (_, raw) in
                            tensors_by_part(ckpt).items() if slot == "step_filter"])
    age = global_step - int(np.median(steps))
    at = expected_counts(ckpt, global_step, older_than=age)
    below = expected_counts(ckpt, global_step, older_than=age - 1)
    check(sum(e for e, _ in below.values()) > sum(e for e, _ in at.values()), "no row sits at the boundary")
    check(reported(dry_run(args, args.np, args.fixture, ["--evict-older-than", str(age)])) == at,
          "rows exactly STEPS old must stay")


def case_clock(args):
    root = os.path.join(fresh(args.work, "clock"), "output")
    shutil.copytree(args.fixture, root)
    ckpt = latest_checkpoint(root)
    result = dry_run(args, args.np, root, ["--evict-older-than", "50"])
    said = result.stdout + result.stderr
    check(f'global step of "user_id": 200 ({FILTER_STEP_SOURCE})' in said,
          f"the step should come from the filter hook's buffer:\n{said}")
    check('does not apply to the tables without a step_filter slot: "cate_ids"' in said, "tables without step_filter")
    # without the buffer, extra.pt's step; without extra.pt, the directory's name
    import torch
    state = torch.load(os.path.join(ckpt, "model.pt"))
    del state[FILTER_STEP_BUFFER]
    torch.save(state, os.path.join(ckpt, "model.pt"))
    result = dry_run(args, args.np, root, ["--evict-older-than", "50"])
    said = result.stdout + result.stderr
    check('global step of "user_id": 200 (extra.pt global_step)' in said, f"the step should come from extra.pt:\n{said}")
    os.remove(os.path.join(ckpt, "extra.pt"))
    result = dry_run(args, args.np, root, ["--evict-older-than", "50"])
    said = result.stdout + result.stderr
    check('global step of "user_id": 200 (ckpt_200)' in said and result.returncode == 0,
          f"the step should come from ckpt_200:\n{said}")
    # no step_filter anywhere: generated tables have none
    plain = make_fixture(args.work, "no_step_filter", "--tables", "3")
    expect_failure(dry_run(args, args.np, plain, ["--evict-older-than", "50"]), 3,
                   "--evict-older-than: no table has a step_filter slot", "no step_filter")
    print("ok: the global step from the filter hook's buffer, then extra.pt, then ckpt_<step>; no step_filter is exit 3")


def rows_by_id(directory):
    """table -> slot -> {id: row bytes}, from any RecIS-layout directory."""
    parts = tensors_by_part(directory)
    out = {}
    for (table, slice_, part, slot), (entry, raw) in parts.items():
        ids = np.frombuffer(parts[(table, slice_, part, "id")][1], dtype="<i8")
        width = len(raw) // len(ids) if len(ids) else 0
        out.setdefault(table, {}).setdefault(slot, {}).update(
            {int(i): raw[n * width:(n + 1) * width] for n, i in enumerate(ids)})
    return out


def kept_ids(ckpt, global_step, older_than=None, l2_below=None):
    """table -> the set of ids the rules keep."""
    out = {}
    for table, _, ids, keep, _ in part_decisions(ckpt, global_step, older_than, l2_below):
        out.setdefault(table, set()).update(int(i) for i in ids[keep])
    return out


def case_export(args):
    """Every exported row by id: kept iff the rules say so, every slot's bytes the source's, rows in source order
    within their part; identical files at np 1, 2 and 3; with quantization the embedding is PyTorch's int8."""
    ckpt = latest_checkpoint(args.fixture)
    global_step = int(os.path.basename(ckpt).split("_")[1])
    source = rows_by_id(ckpt)
    for extra, rules in ((["--evict-older-than", "100"], {"older_than": 100}),
                         (["--evict-older-than", "60", "--evict-l2-below", "1.5", "--filter-optimizer"],
                          {"older_than": 60, "l2_below": 1.5})):
        want = kept_ids(ckpt, global_step, **rules)
        digests = {}
        for np_ in (1, 2, 3):
            parent = fresh(args.work, f"export_np{np_}")
            out = os.path.join(parent, "export")
            expect_success(mpirun(args.binary, np_, ["--ckpt-dir", args.fixture, "--export-dir", out] + extra),
                           f"{extra} at np {np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[2] == digests[1] and digests[3] == digests[1], f"{extra}: np 2 or 3 differ from np 1")
        got = rows_by_id(out)
        for table, slots in got.items():
            check(set(slots["id"]) == want[table], f"{extra} {table}: {len(slots['id'])} ids kept, "
                                                   f"the rules keep {len(want[table])}")
            for slot, rows in slots.items():
                check(set(rows) == want[table], f"{extra} {table}.{slot}: not the kept ids")
                for i, row in rows.items():
                    check(row == source[table][slot][i], f"{extra} {table}.{slot}: id {i} differs from the source")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {extra}")
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        counts = expected_counts(ckpt, global_step, **rules)
        for table, (evicted, rows) in counts.items():
            entry = manifest["tables"][table]
            check(entry.get("evicted_rows") == evicted and entry["rows"] == rows - evicted,
                  f"{extra} manifest {table}: {entry}, expected {evicted} of {rows} evicted")
        check(manifest["tables"]["user_id"].get("global_step") == {"step": global_step, "from": FILTER_STEP_SOURCE},
              f"{extra}: global step in the manifest: {manifest['tables']['user_id']}")
        check(manifest["options"]["evict_older_than"] == rules["older_than"], f"options {manifest['options']}")
        with open(os.path.join(out, "run_record.json")) as f:
            steps = json.load(f).get("global_steps", {})
        check(steps.get("user_id") == {"step": global_step, "from": FILTER_STEP_SOURCE},
              f"{extra}: global steps in the run record: {steps}")
        shown = subprocess.run([args.binary, "inspect", out], capture_output=True, text=True, timeout=120).stdout
        evicted = counts["user_id"][0]
        check(f"user_id: {evicted} rows left out, global step {global_step} ({FILTER_STEP_SOURCE})" in shown,
              f"inspect does not show the eviction:\n{shown}")
        kept = sum(len(v) for v in want.values())
        print(f"ok: {' '.join(extra)}: {kept} rows kept, each slot equal to the source by id, same files at np 1-3")
    # with int8 embeddings: the kept rows, quantized as PyTorch does
    out = os.path.join(fresh(args.work, "int8"), "export")
    expect_success(mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out,
                                                 "--evict-older-than", "100", "--quantize-embeddings", "int8"]),
                   "eviction with int8")
    import torch
    want = kept_ids(ckpt, global_step, older_than=100)
    got = rows_by_id(out)
    for i in sorted(want["user_id"])[:50]:
        row = as_float32(source["user_id"]["embedding"][i], "F32", [1, 8])
        theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(row.copy())).numpy().tobytes()
        check(got["user_id"]["embedding"][i] == theirs, f"user_id id {i}: not PyTorch's int8 of the source row")
    print("ok: eviction with int8 embeddings")


def case_hdf5(args):
    """Eviction into model.h5: every dataset holds the kept rows only, each equal to the source by id; the parts
    dataset counts the kept rows of each part; the same file at np 1 and 3."""
    import h5py
    ckpt = latest_checkpoint(args.fixture)
    global_step = int(os.path.basename(ckpt).split("_")[1])
    source = rows_by_id(ckpt)
    rules = {"older_than": 100, "l2_below": 1.5}
    options = ["--evict-older-than", "100", "--evict-l2-below", "1.5", "--format", "hdf5"]
    digests = {}
    for np_ in (1, 3):
        out = os.path.join(fresh(args.work, f"hdf5_np{np_}"), "export")
        expect_success(mpirun(args.binary, np_, ["--ckpt-dir", args.fixture, "--export-dir", out] + options),
                       f"{options} at np {np_}")
        digests[np_] = tree_digest(out, skip=("run_record.json",))
    check(digests[1] == digests[3], "model.h5 differs between np 1 and 3")
    want = kept_ids(ckpt, global_step, **rules)
    kept_per_part = {}
    for table, part, ids, keep, _ in part_decisions(ckpt, global_step, **rules):
        kept_per_part.setdefault(table, []).append((part, int(keep.sum())))
    with h5py.File(os.path.join(out, "model.h5"), "r") as f:
        for table, group in f["sparse"].items():
            ids = group["id"][:]
            check(set(int(i) for i in ids) == want[table] and len(ids) == len(want[table]),
                  f"hdf5 {table}: {len(ids)} ids, the rules keep {len(want[table])}")
            for slot in source[table]:
                if slot == "id":
                    continue
                rows = group[slot][:]
                for n, i in enumerate(ids):
                    check(rows[n].tobytes() == source[table][slot][int(i)], f"hdf5 {table}.{slot}: id {i} differs")
            parts = group["parts"][:]
            counts = sorted(c for _, c in kept_per_part[table])
            check(sorted(int(p[4]) for p in parts) == counts and int(parts[:, 4].sum()) == len(ids),
                  f"hdf5 {table}: parts {parts.tolist()}, kept per part {counts}")
    expect_success(mpirun(args.binary, args.np, ["verify", out]), "verify hdf5")
    print(f"ok: eviction into model.h5: {sum(len(v) for v in want.values())} rows kept, equal to the source by id, "
          "parts count them, same file at np 1 and 3")


CASES = {"dry_run": case_dry_run, "clock": case_clock, "export": case_export, "hdf5": case_hdf5}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
