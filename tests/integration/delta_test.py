#!/usr/bin/python3
"""Integration tests of delta exports (--delta-since), on one training run written by make_fixture.py
--training-run: ckpt_100, then ckpt_150 and ckpt_200, each updating about a tenth of every part's rows (new values
in every slot, a later step_filter) and adding new ids. Only user_id has a step_filter slot; the other tables are
exported whole in a delta.

    delta_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  delta     the delta of ckpt_200 since 100 (a step, and the full export of ckpt_100 as BASE_EXPORT) holds exactly
            the rows with step_filter > 100, every slot equal to the source by id; the other tables whole; the
            manifest's kind, base_step, step and per-table delta; verify passes; the same files at np 1 and 3
  combined  with --filter-optimizer, --reshard 3 and int8 embeddings, and with eviction; into model.h5
  refusals  a delta that goes back in time (exit 2), a base without a step or not an export (exit 3), HugeCTR
            (exit 2): one error line, nothing published
  merge     merge(full(100), delta(200 since 100)) equals full(200) by id in every table and slot, with the
            filter, int8 and --reshard, and as a chain 100 -> 150 -> 200; np 1 and 3 alike; verify passes
  merge_refusals  deltas out of order, onto the wrong base, of another dtype: exit 3; a broken delta publishes
            nothing
  merge_options  merge of plain exports with an export's row option (--filter-optimizer, --drop-slot, fp16, int8,
            int4, a per-table dtype, with eviction by step, by norm and both, --reshard alone and with both, --format
            hdf5; exports in 3 parts merged into 5) equals the export of ckpt_200 with that option by id and part,
            manifest tables alike; np 1 and 3 alike, and with every part's join spilled to disk; verify passes;
            converting a converted base is refused
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eviction_test import FILTER_STEP_SOURCE, rows_by_id  # noqa: E402
from fault_test import wait_for_killed_processes  # noqa: E402
from export_test import (REPO_ROOT, check, expect_failure, expect_success, fresh, mpirun,  # noqa: E402
                         run_cases, tree_digest)
from serving_dtype_test import as_float32, tensors_by_part  # noqa: E402

WHOLE = ("item_id", "cate_ids", "empty_table", "商品_id")  # the tables without step_filter
FG = os.path.join(REPO_ROOT, "configs", "example-fg.json")
MC = os.path.join(REPO_ROOT, "configs", "example-mc.json")


def user_id_steps(ckpt):
    """user_id's ids and their step_filter, from the checkpoint's own bytes."""
    parts = tensors_by_part(ckpt)
    ids, steps = [], []
    for (table, slice_, part, slot), (_, raw) in parts.items():
        if table == "user_id" and slot == "step_filter":
            ids.append(np.frombuffer(parts[(table, slice_, part, "id")][1], dtype="<i8"))
            steps.append(np.frombuffer(raw, dtype="<i8"))
    return np.concatenate(ids), np.concatenate(steps)


def changed_ids(ckpt, base_step):
    """user_id's ids whose step_filter is above base_step."""
    ids, steps = user_id_steps(ckpt)
    return set(int(i) for i in ids[steps > base_step])


def export(args, np_, name, ckpt, extra):
    out = os.path.join(fresh(args.work, name), "export")
    expect_success(mpirun(args.binary, np_, ["--ckpt-dir", ckpt, "--export-dir", out] + extra), f"{name}: {extra}")
    return out


def manifest_of(out):
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


def check_rows(what, got, source, want_ids, slots=None):
    """Every table of `got` (table -> slot -> {id: bytes}): user_id holds exactly want_ids, the other tables every
    source row; each row of each slot equal to the source's by id (except the slots in `slots`, left to the caller)."""
    for table, by_slot in source.items():
        expected = want_ids if table == "user_id" else set(by_slot["id"])
        check(table in got or not expected, f"{what}: table {table} missing")
        for slot, rows in got.get(table, {}).items():
            check(set(rows) == expected, f"{what} {table}.{slot}: {len(rows)} ids, expected {len(expected)}")
            if slots is not None and slot not in slots:
                continue
            for i, row in rows.items():
                check(row == by_slot[slot][i], f"{what} {table}.{slot}: id {i} differs from the source")


def case_delta(args):
    ckpt100, ckpt200 = (os.path.join(args.fixture, f"ckpt_{s}") for s in (100, 200))
    base = export(args, args.np, "base", ckpt100, [])
    manifest = manifest_of(base)
    check(manifest["kind"] == "full" and manifest["step"] == 100 and "base_step" not in manifest,
          f"a full export's kind and step: {manifest.get('kind')}, {manifest.get('step')}")
    want = changed_ids(ckpt200, 100)
    check(0 < len(want) < len(rows_by_id(ckpt200)["user_id"]["id"]), f"the fixture changed {len(want)} rows")
    source = rows_by_id(ckpt200)
    digests = {}
    for np_, since in ((1, "100"), (3, "100"), (2, base)):
        out = export(args, np_, f"delta_np{np_}", ckpt200, ["--delta-since", since])
        digests[np_] = tree_digest(out, skip=("run_record.json",))
        hidden = [n for n in os.listdir(out) if n.startswith(".")]
        check(hidden == [], f"delta np {np_}: the export holds {hidden} (the count pass's bitmaps are scratch)")
        check_rows(f"delta since {since} np {np_}", rows_by_id(out), source, want)
        manifest = manifest_of(out)
        check(manifest["kind"] == "delta" and manifest["base_step"] == 100 and manifest["step"] == 200,
              f"delta manifest: kind {manifest['kind']}, base_step {manifest.get('base_step')}, step {manifest['step']}")
        check(manifest["options"]["delta_since"] == 100, f"options: {manifest['options']}")
        user = manifest["tables"]["user_id"]
        check(user["delta"] == "changed" and user["rows"] == len(want) and "evicted_rows" not in user,
              f"user_id in the manifest: {user}")
        check(user["global_step"] == {"step": 200, "from": FILTER_STEP_SOURCE}, f"user_id's step: {user}")
        for table in WHOLE:
            check(manifest["tables"][table]["delta"] == "full", f"{table}: {manifest['tables'][table]}")
    check(digests[1] == digests[3] == digests[2], "the delta differs between np 1, 2 and 3 (or step and base)")
    expect_success(mpirun(args.binary, args.np, ["verify", out]), "verify the delta")
    shown = subprocess.run([args.binary, "inspect", out], capture_output=True, text=True, timeout=120).stdout
    check("delta: the rows updated after step 100, up to step 200" in shown, f"inspect on a delta:\n{shown}")
    # a chain: the delta of ckpt_200 since the delta of ckpt_150 holds the rows updated after 150
    delta150 = export(args, args.np, "delta150", os.path.join(args.fixture, "ckpt_150"), ["--delta-since", base])
    out = export(args, args.np, "delta200", ckpt200, ["--delta-since", delta150])
    check_rows("delta since the delta at 150", rows_by_id(out), source, changed_ids(ckpt200, 150))
    check(manifest_of(out)["base_step"] == 150, "the base of a delta on a delta is the latter's step")
    print(f"ok: delta of ckpt_200 since 100: {len(want)} changed rows of user_id by id, other tables whole, "
          "same files at np 1-3 and from the base export; a chain from 150")


def case_combined(args):
    import h5py
    import torch
    ckpt = os.path.join(args.fixture, "ckpt_200")
    source = rows_by_id(ckpt)
    want = changed_ids(ckpt, 100)
    # --filter-optimizer, --reshard 3 and int8 embeddings: the changed rows in their target parts
    options = ["--delta-since", "100", "--filter-optimizer", "--reshard", "3", "--quantize-embeddings", "int8"]
    digests = {}
    for np_ in (1, 3):
        out = export(args, np_, f"combined_np{np_}", ckpt, options)
        digests[np_] = tree_digest(out, skip=("run_record.json",))
        hidden = [n for n in os.listdir(out) if n.startswith(".")]
        check(hidden == [], f"delta np {np_}: the export holds {hidden} (the count pass's bitmaps are scratch)")
    check(digests[1] == digests[3], f"{options}: np 1 and 3 differ")
    got = rows_by_id(out)
    check(all(not slot.startswith("sparse_") for t in got.values() for slot in t), "optimizer slots left in")
    check_rows(" ".join(options), got, source, want, slots=("id", "step_filter"))
    for i in sorted(want)[:40]:
        row = as_float32(source["user_id"]["embedding"][i], "F32", [1, 8])
        theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(row.copy())).numpy().tobytes()
        check(got["user_id"]["embedding"][i] == theirs, f"user_id id {i}: not PyTorch's int8 of the source row")
    for (table, slice_, part, slot), (entry, raw) in tensors_by_part(out).items():
        if slot == "id":
            begin, end, _ = (int(x) for x in slice_.split("@"))
            ids = np.frombuffer(raw, dtype="<i8")
            check(((ids % 65536 >= begin) & (ids % 65536 < end)).all(), f"{table} {part}: an id outside {slice_}")
    print(f"ok: {' '.join(options)}: the changed rows in their target parts, int8 as PyTorch's, np 1 and 3 alike")
    # with eviction: the changed rows that the rule keeps
    out = export(args, args.np, "evicting", ckpt, ["--delta-since", "100", "--evict-older-than", "60"])
    ids, steps = user_id_steps(ckpt)
    kept = set(int(i) for i in ids[(steps > 100) & (200 - steps <= 60)])
    check(kept < want, "the eviction rule should leave out some changed rows")
    check_rows("delta with eviction", rows_by_id(out), source, kept)
    print(f"ok: delta with --evict-older-than 60: {len(kept)} of {len(want)} changed rows")
    # into model.h5: the same rows by id
    digests = {}
    for np_ in (1, 3):
        out = export(args, np_, f"hdf5_np{np_}", ckpt, ["--delta-since", "100", "--format", "hdf5"])
        digests[np_] = tree_digest(out, skip=("run_record.json",))
        hidden = [n for n in os.listdir(out) if n.startswith(".")]
        check(hidden == [], f"delta np {np_}: the export holds {hidden} (the count pass's bitmaps are scratch)")
    check(digests[1] == digests[3], "model.h5 of a delta differs between np 1 and 3")
    with h5py.File(os.path.join(out, "model.h5"), "r") as f:
        for table, group in f["sparse"].items():
            ids = [int(i) for i in group["id"][:]]
            expected = want if table == "user_id" else set(source[table]["id"])
            check(set(ids) == expected and len(ids) == len(expected), f"hdf5 {table}: {len(ids)} ids")
            for slot in source[table]:
                rows = group[slot][:]
                for n, i in enumerate(ids):
                    check(rows[n].tobytes() == source[table][slot][i], f"hdf5 {table}.{slot}: id {i} differs")
    check(manifest_of(out)["kind"] == "delta", "model.h5 delta manifest")
    print("ok: a delta into model.h5, np 1 and 3 alike")


def case_refusals(args):
    ckpt = os.path.join(args.fixture, "ckpt_200")
    parent = fresh(args.work, "refusals")
    out = os.path.join(parent, "export")
    for since, code, text in (("200", 2, "a delta's base must be an earlier step"),
                              ("250", 2, "the checkpoint is at step 200"),
                              ("/no/such/export", 2, "neither a step"),
                              (args.fixture, 3, "not an export directory")):
        expect_failure(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out, "--delta-since", since]),
                       code, text, f"--delta-since {since}")
        check(os.listdir(parent) == [], f"--delta-since {since}: {os.listdir(parent)} left behind")
    stepless = os.path.join(fresh(args.work, "stepless"), "export")
    os.makedirs(stepless)
    with open(os.path.join(stepless, "manifest.json"), "w") as f:
        json.dump({"manifest_version": 1}, f)
    expect_failure(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out, "--delta-since", stepless]),
                   3, 'has no "step"', "a base without a step")
    # refused on the command line, before any file is read (these exist, but are no HugeCTR model)
    result = mpirun(args.binary, 1, ["--source", "hugectr", "--graph", os.path.abspath(__file__), "--sparse", ckpt,
                                     "--export-dir", out, "--delta-since", "100"])
    check(result.returncode == 2 and "HugeCTR model has none" in result.stderr, f"HugeCTR delta: {result.stderr}")
    print("ok: refusals")


def merge(args, np_, name, base, deltas, extra=()):
    out = os.path.join(fresh(args.work, name), "export")
    expect_success(mpirun(args.binary, np_, ["merge", base] + list(deltas) + ["--export-dir", out] + list(extra)),
                   f"merge {name}")
    return out


def check_same_rows(what, got_dir, want_dir):
    """Every table and slot of the two exports holds the same ids with the same bytes, in the same parts."""
    got, want = rows_by_id(got_dir), rows_by_id(want_dir)
    check(set(got) == set(want), f"{what}: tables {sorted(got)} against {sorted(want)}")
    for table, slots in want.items():
        check(set(got[table]) == set(slots), f"{what} {table}: slots {sorted(got[table])} against {sorted(slots)}")
        for slot, rows in slots.items():
            check(got[table][slot] == rows, f"{what} {table}.{slot}: the rows differ by id")
    parts = {k: len(v[1]) for k, v in tensors_by_part(got_dir).items()}
    check(parts == {k: len(v[1]) for k, v in tensors_by_part(want_dir).items()}, f"{what}: other parts or sizes")


def h5_tables(out):
    """model.h5's tables: table -> slot -> {id: row bytes}, each table's parts (slice and rows per part), and the
    optimizer's datasets by path."""
    import h5py
    tables, parts, optimizer = {}, {}, {}
    with h5py.File(os.path.join(out, "model.h5"), "r") as f:
        for table, group in f["sparse"].items():
            ids = [int(i) for i in group["id"][:]]
            check(len(set(ids)) == len(ids), f"{out} {table}: an id twice")
            tables[table] = {slot: dict(zip(ids, (r.tobytes() for r in group[slot][:])))
                             for slot in group if slot != "parts"}
            parts[table] = group["parts"][:].tolist()
        if "optimizer" in f:
            f["optimizer"].visititems(lambda name, d: optimizer.__setitem__(name, d[()].tobytes())
                                      if isinstance(d, h5py.Dataset) else None)
    return tables, parts, optimizer


def case_merge(args):
    """merge(full(100), delta(200 since 100)) is full(200) row for row by id, in every table and slot, with the
    options the exports share; also as a chain 100 -> 150 -> 200; the same files at np 1 and 3."""
    ckpt = {s: os.path.join(args.fixture, f"ckpt_{s}") for s in (100, 150, 200)}
    for options in ([], ["--filter-optimizer"], ["--filter-optimizer", "--quantize-embeddings", "int8"],
                    ["--reshard", "3"]):
        label = " ".join(options) or "copy"
        tag = str(abs(hash(label)))
        base = export(args, args.np, f"m{tag}_base", ckpt[100], options)
        delta = export(args, args.np, f"m{tag}_delta", ckpt[200], options + ["--delta-since", base])
        full = export(args, args.np, f"m{tag}_full", ckpt[200], options)
        digests = {}
        for np_ in (1, 3):
            out = merge(args, np_, f"m{tag}_np{np_}", base, [delta])
            digests[np_] = tree_digest(out, skip=("run_record.json", "manifest.json"))
        check(digests[1] == digests[3], f"{label}: the merge differs between np 1 and 3")
        check_same_rows(f"merge ({label})", out, full)
        manifest, want = manifest_of(out), manifest_of(full)
        check(manifest["kind"] == "full" and manifest["step"] == 200, f"{label}: kind {manifest['kind']}")
        # the error figures are an export's measure of its own conversion: a merge, whose rows several exports
        # quantized, does not claim them
        measured = ("source_dtype", "quantization_error")
        want_tables = {t: {k: v for k, v in e.items() if k not in measured} for t, e in want["tables"].items()}
        check(manifest["tables"] == want_tables, f"{label}: tables {manifest['tables']} against {want_tables}")
        check(manifest["merged_from"] == [os.path.realpath(base), os.path.realpath(delta)], "merged_from")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify the merge ({label})")
        print(f"ok: merge of full(100) and delta(200 since 100) is full(200) by id ({label}), np 1 and 3 alike")
    base = export(args, args.np, "chain_base", ckpt[100], [])
    d150 = export(args, args.np, "chain_150", ckpt[150], ["--delta-since", base])
    d200 = export(args, args.np, "chain_200", ckpt[200], ["--delta-since", d150])
    out = merge(args, args.np, "chain", base, [d150, d200])
    check_same_rows("merge of a chain", out, export(args, args.np, "chain_full", ckpt[200], []))
    shown = subprocess.run([args.binary, "inspect", out], capture_output=True, text=True, timeout=120).stdout
    check(f"full export at step 200, merged from {os.path.realpath(base)} and 2 delta(s)" in shown,
          f"inspect on a merge:\n{shown}")
    print("ok: merge of a chain 100 -> 150 -> 200 is full(200) by id")
    # the dense export and fg.json come from the newest export that has them
    dense = ["--dense-model", os.path.join(args.fixture, "dense_arch.pt"), "--fg", FG, "--mc", MC,
             "--outputs", "ctr,cvr"]
    base = export(args, args.np, "dense_base", ckpt[100], dense)
    delta = export(args, args.np, "dense_delta", ckpt[200], dense + ["--delta-since", base])
    out = merge(args, args.np, "dense", base, [delta])
    carried = [n for n in tree_digest(delta) if n.startswith("fx_user_model/") or n.endswith(".json") and n in (
        "fg.json", "input_columns.json")]
    check(len(carried) >= 2 and all(tree_digest(out)[n] == tree_digest(delta)[n] for n in carried),
          f"the merge should carry the delta's {carried}")
    check(tree_digest(out)["fx_user_model/user_model.pt"] != tree_digest(base)["fx_user_model/user_model.pt"],
          "the dense network should be the delta's, not the base's")
    expect_success(mpirun(args.binary, args.np, ["verify", out]), "verify a merge with a dense export")
    print(f"ok: merge carries the newest dense export, fg and mc ({len(carried)} files), verify re-scores it")
    # --evict-older-than on the merge drops what the same rule drops from full(200)
    out = merge(args, 3, "chain_evicting", base, [d150, d200], ["--evict-older-than", "60"])
    full = export(args, args.np, "chain_full_evicting", ckpt[200], ["--evict-older-than", "60"])
    check_same_rows("merge --evict-older-than 60", out, full)
    got, want = manifest_of(out)["tables"]["user_id"], manifest_of(full)["tables"]["user_id"]
    check(got["evicted_rows"] == want["evicted_rows"] > 0 and "evicted_rows" not in manifest_of(out)["tables"]["item_id"],
          f"evicted rows: {got} against {want}")
    print(f"ok: merge --evict-older-than 60 is full(200) --evict-older-than 60 by id ({got['evicted_rows']} evicted)")


def case_merge_refusals(args):
    """Deltas out of order, onto the wrong base, or of another serving dtype are exit 3 naming the delta; a delta
    whose data went missing mid-run publishes nothing."""
    ckpt = {s: os.path.join(args.fixture, f"ckpt_{s}") for s in (100, 150, 200)}
    base = export(args, args.np, "r_base", ckpt[100], [])
    base150 = export(args, args.np, "r_base150", ckpt[150], [])
    d150 = export(args, args.np, "r_150", ckpt[150], ["--delta-since", base])
    d200 = export(args, args.np, "r_200", ckpt[200], ["--delta-since", d150])
    d200_int8 = export(args, args.np, "r_200_int8", ckpt[200], ["--delta-since", "150", "--quantize-embeddings", "int8"])
    parent = fresh(args.work, "r_out")
    out = os.path.join(parent, "export")
    for deltas, text in (([d200, d150], "the updates in between would be lost"),
                         ([d200], "the updates in between would be lost"),
                         ([d150, d150], "deltas go in order"),
                         ([d150, d200_int8], "a merge needs the same serving dtype per table"),
                         ([base150], "is a full export, not a delta")):
        expect_failure(mpirun(args.binary, args.np, ["merge", base] + deltas + ["--export-dir", out]), 3, text,
                       f"merge {[os.path.basename(os.path.dirname(d)) for d in deltas]}")
        check(os.listdir(parent) == [], f"a refused merge left {os.listdir(parent)}")
    # a delta's data file cut short: found while writing, nothing published
    broken = os.path.join(fresh(args.work, "r_broken"), "export")
    subprocess.run(["cp", "-r", d150, broken], check=True)
    victim = sorted(n for n in os.listdir(broken) if n.endswith(".safetensors"))[0]
    with open(os.path.join(broken, victim), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(broken, victim)) - 8)
    result = mpirun(args.binary, args.np, ["merge", base, broken, "--export-dir", out])
    check(result.returncode == 3 and victim in result.stderr, f"a truncated delta: exit {result.returncode}\n"
                                                            f"{result.stderr}")
    check(os.listdir(parent) == [], f"a failed merge left {os.listdir(parent)}")
    # a rank killed mid-merge, or rank 0 just before publishing: nothing published, the rerun succeeds and cleans up
    for stage, rank in (("merge", 1), ("publish", 0)):
        parent = fresh(args.work, f"r_kill_{stage}")
        out = os.path.join(parent, "export")
        command = ["merge", base, d150, d200, "--export-dir", out]
        result = mpirun(args.binary, 2, command + ["--debug-fail-at", f"{stage}@{rank}"])
        check(result.returncode != 0 and not os.path.exists(out), f"kill at {stage}@{rank}: exit "
                                                                   f"{result.returncode}, published {os.path.exists(out)}")
        wait_for_killed_processes(parent)
        expect_success(mpirun(args.binary, 2, command), f"merge after a kill at {stage}@{rank}")
        check(os.listdir(parent) == ["export"], f"after the rerun: {os.listdir(parent)}")
    print("ok: merge refusals; a broken delta or a killed merge publishes nothing")


def case_merge_options(args):
    """merge(full(100), delta(200 since 100)) with a row option is the export of ckpt_200 with that option (issue 37:
    merge is a job of the export's pipeline, so it takes the export's row transforms)."""
    ckpt = {s: os.path.join(args.fixture, f"ckpt_{s}") for s in (100, 150, 200)}
    base = export(args, args.np, "o_base", ckpt[100], [])
    d150 = export(args, args.np, "o_150", ckpt[150], ["--delta-since", base])
    d200 = export(args, args.np, "o_200", ckpt[200], ["--delta-since", d150])
    # into model.h5 (--format hdf5): the same tables by id, parts and optimizer scalars as the export's; its /dense
    # group is model.pt's, which an export does not hold (the merge carries the dense TorchScript export instead)
    for options in (["--filter-optimizer"], ["--drop-slot", "step_filter"], ["--quantize-embeddings", "fp16"],
                    ["--filter-optimizer", "--quantize-embeddings", "int8"], ["--quantize-embeddings", "int4"],
                    ["--quantize-table", "user_id=int8"], ["--quantize-embeddings", "int8", "--evict-older-than", "60"],
                    ["--evict-l2-below", "0.4"], ["--evict-l2-below", "0.4", "--evict-older-than", "60"],
                    ["--reshard", "3"], ["--reshard", "1", "--evict-l2-below", "0.4"],
                    ["--reshard", "5", "--quantize-embeddings", "int8", "--evict-older-than", "60"],
                    ["--format", "hdf5"], ["--format", "hdf5", "--evict-l2-below", "0.4"],
                    ["--format", "hdf5", "--reshard", "5", "--quantize-embeddings", "int8", "--evict-older-than", "60"]):
        label = " ".join(options)
        tag = str(abs(hash(label)))
        full = export(args, args.np, f"o{tag}_full", ckpt[200], options)
        digests = {}
        for np_ in (1, 3):
            out = merge(args, np_, f"o{tag}_np{np_}", base, [d150, d200], options)
            digests[np_] = tree_digest(out, skip=("run_record.json", "manifest.json"))
            check(sorted(os.listdir(out)) == sorted(os.listdir(full)), f"{label}: the merge holds {os.listdir(out)}")
        check(digests[1] == digests[3], f"{label}: the merge differs between np 1 and 3")
        # every part's join spilled (a few ids of memory), and the base's files dealt by size: the same bytes
        spilled = merge(args, 3, f"o{tag}_spilled", base, [d150, d200],
                        options + ["--debug-join-kib", "1", "--balance", "size"])
        check(tree_digest(spilled, skip=("run_record.json", "manifest.json")) == digests[3],
              f"{label}: a merge whose joins spilled (--balance size) differs from one in memory")
        if "hdf5" in options:
            got, want = h5_tables(out), h5_tables(full)
            check(set(got[0]) == set(want[0]), f"{label}: tables {sorted(got[0])} against {sorted(want[0])}")
            for table in want[0]:
                check(got[0][table] == want[0][table], f"{label} {table}: the rows differ by id")
            check(got[1:] == want[1:], f"{label}: other parts or optimizer scalars")
        else:
            check_same_rows(f"merge {label}", out, full)
        # the global step says where it came from: a merge's is the last delta's, the export's a model.pt buffer
        got, want = ({t: {k: v.get("step") if k == "global_step" else v for k, v in e.items()}
                      for t, e in manifest_of(d)["tables"].items()} for d in (out, full))
        check(got == want, f"{label}: tables {got} against {want}")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify the merge ({label})")
        print(f"ok: merge {label} is the export of ckpt_200 with {label} by id and part, np 1 and 3 alike")
    # exports resharded into 3 parts, merged into 5: the rows of the export of ckpt_200 into 5
    base3 = export(args, args.np, "o_base3", ckpt[100], ["--reshard", "3"])
    d200_3 = export(args, args.np, "o_200_3", ckpt[200], ["--reshard", "3", "--delta-since", base3])
    out = merge(args, 3, "o_3_into_5", base3, [d200_3], ["--reshard", "5", "--evict-l2-below", "0.4"])
    check_same_rows("merge of exports in 3 parts into 5", out,
                    export(args, args.np, "o_full5", ckpt[200], ["--reshard", "5", "--evict-l2-below", "0.4"]))
    expect_success(mpirun(args.binary, args.np, ["verify", out]), "verify the merge into 5 parts")
    print("ok: merge of exports in 3 parts with --reshard 5 is the export of ckpt_200 into 5 parts")
    # a file larger than a rank's share is split into pieces that several ranks write, as an export's
    run = os.path.join(fresh(args.work, "o_big_run"), "out")
    subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_fixture.py"), run, "--training-run", "--steps",
                    "100,200", "--ranks", "1", "--optimizer", "adamw", "--table", "user_id:F32:64:6000", "--table",
                    "item_id:F32:8:3000"], check=True, capture_output=True)
    big_base = export(args, 3, "o_big_base", os.path.join(run, "ckpt_100"), [])
    big_delta = export(args, 3, "o_big_delta", os.path.join(run, "ckpt_200"), ["--delta-since", big_base])
    outs = {}
    for np_ in (1, 3):
        outs[np_] = os.path.join(fresh(args.work, f"o_big_np{np_}"), "export")
        result = mpirun(args.binary, np_, ["merge", big_base, big_delta, "--export-dir", outs[np_], "--chunk-mib", "1",
                                           "--filter-optimizer"])
        expect_success(result, f"merge of the big run at np {np_}")
        check(np_ == 1 or "is split into 2 pieces" in result.stdout + result.stderr,
              f"np 3 should split a file:\n{result.stdout}{result.stderr}")
    check(tree_digest(outs[1], skip=("run_record.json",)) == tree_digest(outs[3], skip=("run_record.json",)),
          "a merge in pieces differs from one without")
    spilled = os.path.join(fresh(args.work, "o_big_spilled"), "export")
    expect_success(mpirun(args.binary, 3, ["merge", big_base, big_delta, "--export-dir", spilled, "--chunk-mib", "1",
                                           "--filter-optimizer", "--debug-join-kib", "16"]), "merge with spilled joins")
    check(tree_digest(spilled, skip=("run_record.json",)) == tree_digest(outs[3], skip=("run_record.json",)),
          "a merge whose joins spilled differs from one in memory")
    check_same_rows("merge in pieces", outs[3], export(args, 3, "o_big_full", os.path.join(run, "ckpt_200"),
                                                      ["--filter-optimizer"]))
    expect_success(mpirun(args.binary, 3, ["verify", outs[3]]), "verify a merge written in pieces")
    print("ok: a merge splits a large file into pieces over the ranks as an export does; np 1 and 3 alike")
    # rows the base converted are not converted again
    base_int8 = export(args, args.np, "o_base_int8", ckpt[100], ["--quantize-embeddings", "int8"])
    d200_int8 = export(args, args.np, "o_200_int8", ckpt[200], ["--delta-since", base_int8, "--quantize-embeddings",
                                                                 "int8"])
    parent = fresh(args.work, "o_refused")
    expect_failure(mpirun(args.binary, args.np, ["merge", base_int8, d200_int8, "--export-dir",
                                                 os.path.join(parent, "export"), "--quantize-embeddings", "int4"]),
                   3, "a merge converts float rows only", "merge of an int8 base with --quantize-embeddings int4")
    check(os.listdir(parent) == [], f"a refused merge left {os.listdir(parent)}")
    print("ok: a merge does not convert rows its base converted already (exit 3)")
    # a table name the base does not have is a usage error, as for an export (a typo would convert nothing)
    expect_failure(mpirun(args.binary, args.np, ["merge", base, d150, "--export-dir", os.path.join(parent, "export"),
                                                 "--quantize-table", "no_such=int8"]),
                   2, "--quantize-table \"no_such\": the base export has no such table", "merge --quantize-table no_such")
    check(os.listdir(parent) == [], f"a refused merge left {os.listdir(parent)}")
    print("ok: merge --quantize-table of a table the base lacks is exit 2 naming it")


CASES = {"delta": case_delta, "combined": case_combined, "refusals": case_refusals, "merge": case_merge,
         "merge_refusals": case_merge_refusals, "merge_options": case_merge_options}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
