#!/usr/bin/python3
"""Checkpoints written by RecIS v1.1's own saver (tests/fixtures/recis-v1.1-real, copied from shared/fixtures; its
README says what is in them), exported by the real binary and compared with the live table contents RecIS dumped
right before each save (truth/rank<r>_step<s>.pt), by id: every id of every table, every kept slot's row byte for
byte. A plain copy's data files are the source's byte for byte.

    real_recis_test.py CASE --binary BIN --fixture tests/fixtures/recis-v1.1-real --work DIR [--np N]
    CASE: copy | filter | reshard | evict | hdf5 | dense | inspect
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch

os.environ.pop("OMPI_COMM_WORLD_SIZE", None)  # Debian's h5py would pick its MPI build under mpirun
import h5py  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import check, expect_success, mpirun, read_safetensors, run_cases, tensor_bytes  # noqa: E402

# (run, checkpoint step): every checkpoint RecIS wrote there
CHECKPOINTS = [("A", 3), ("A", 6), ("C", 5)]
NUMPY = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def truth_rows(real, run, step):
    """{table: {slot: {id: row bytes}}} over every worker's dump of that step."""
    out = {}
    truth_dir = os.path.join(real, run, "truth")
    for name in sorted(os.listdir(truth_dir)):
        if not name.endswith(f"_step{step}.pt"):
            continue
        dump = torch.load(os.path.join(truth_dir, name))
        for table, content in dump["tables"].items():
            ids = content["id"].numpy().tolist()
            for slot, rows in content.items():
                if slot in ("id", "table"):
                    continue
                rows = rows.numpy().reshape(len(ids), -1) if ids else rows.numpy()
                by_id = out.setdefault(table, {}).setdefault(slot, {})
                for i, row_id in enumerate(ids):
                    check(row_id not in by_id, f"{name}: {table} id {row_id} dumped twice")
                    by_id[row_id] = rows[i].tobytes()
            out.setdefault(table, {}).setdefault("id", {})
    return out


def exported_rows(export_dir):
    """The same shape, read from an export through its own index and tensorkey.json."""
    with open(os.path.join(export_dir, "index")) as f:
        index = json.load(f)
    with open(os.path.join(export_dir, "tensorkey.json")) as f:
        tensorkey = json.load(f)
    file_of = {number: name for name, number in index["file_index"].items()}
    files = {}
    parts = {}  # (table, part key) -> {slot: (header entry, bytes)}
    for key, logical in tensorkey.items():
        table, rest = logical.split("@", 1)
        slot = rest.split("^", 1)[0]
        name = file_of[index["block_index"][key]]
        if name not in files:
            files[name] = read_safetensors(os.path.join(export_dir, name))
        header, _, data = files[name]
        parts.setdefault((table, key.rsplit("/", 1)[1]), {})[slot] = (header[key], tensor_bytes(header, data, key))
    out = {}
    for (table, part), slots in parts.items():
        entry, raw = slots["id"]
        ids = np.frombuffer(raw, dtype=np.int64).tolist()
        out.setdefault(table, {}).setdefault("id", {})
        for slot, (entry, raw) in slots.items():
            if slot == "id":
                continue
            rows = np.frombuffer(raw, dtype=NUMPY[entry["dtype"]])
            rows = rows.reshape(len(ids), -1) if ids else rows
            by_id = out[table].setdefault(slot, {})
            for i, row_id in enumerate(ids):
                check(row_id not in by_id, f"{export_dir}: {table} id {row_id} exported twice")
                by_id[row_id] = rows[i].tobytes()
    return out


def hdf5_rows(path):
    """The same shape, read from model.h5's /sparse/<table>/<slot> datasets."""
    out = {}
    with h5py.File(path, "r") as f:
        for table, group in f["sparse"].items():
            ids = group["id"][:].tolist()
            out[table] = {"id": {}}
            for slot, dataset in group.items():
                if slot in ("id", "parts"):
                    continue
                rows = dataset[:].reshape(len(ids), -1) if ids else dataset[:]
                out[table][slot] = {row_id: rows[i].tobytes() for i, row_id in enumerate(ids)}
    return out


def compare(export_dir, truth, slots_kept, what, got=None):
    got = got if got is not None else exported_rows(export_dir)
    check(sorted(got) == sorted(truth), f"{what}: tables {sorted(got)}, truth has {sorted(truth)}")
    for table, slots in truth.items():
        want_slots = sorted(s for s in slots if slots_kept(s))
        check(sorted(got[table]) == want_slots, f"{what}: {table} slots {sorted(got[table])}, expected {want_slots}")
        for slot in want_slots:
            if slot == "id":
                continue
            check(sorted(got[table][slot]) == sorted(slots[slot]), f"{what}: {table}.{slot} ids differ from the truth")
            bad = [i for i, row in slots[slot].items() if got[table][slot][i] != row]
            check(not bad, f"{what}: {table}.{slot}: {len(bad)} rows differ from the truth, e.g. id {bad[:1]}")
    rows = sum(len(s.get("embedding", {})) for s in truth.values())
    print(f"ok: {what}: {len(truth)} tables, {rows} embedding rows equal the truth by id")


def case_evict(args):
    """--evict-older-than on copies of the real checkpoints whose extra.pt says a step 1000 later than the truth: the
    filter hook's buffer RecIS keys by module path (`...CoalescedHashtable_<sha>._hashtable._filter_hook_impl.
    _global_step`, shared by the engine table's children) must win, so exactly the rows the truth's step_filter puts
    within 2 steps of the checkpoint's step are kept; taken from extra.pt, no row would be."""
    older_than = 2
    for run, step in CHECKPOINTS:
        ckpt = os.path.join(args.work, run, f"ckpt_{step}")
        shutil.rmtree(os.path.dirname(ckpt), ignore_errors=True)
        shutil.copytree(os.path.join(args.fixture, run, f"ckpt_{step}"), ckpt)
        extra = torch.load(os.path.join(ckpt, "extra.pt"))
        extra["global_step"] = torch.tensor(step + 1000)
        torch.save(extra, os.path.join(ckpt, "extra.pt"))
        truth = truth_rows(args.fixture, run, step)
        for table, slots in truth.items():
            if "step_filter" not in slots:
                continue
            stale = {i for i, sf in slots["step_filter"].items()
                     if step - int(np.frombuffer(sf, dtype=np.int64)[0]) > older_than}
            check(stale and len(stale) < len(slots["step_filter"]), f"{run}/ckpt_{step}: {table}: nothing to tell")
            for slot in slots:
                slots[slot] = {i: row for i, row in slots[slot].items() if i not in stale}
        out = os.path.join(args.work, f"{run}_ckpt_{step}")
        shutil.rmtree(out, ignore_errors=True)
        what = f"evict {run}/ckpt_{step} np {args.np}"
        expect_success(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out, "--filter-optimizer",
                                                     "--evict-older-than", str(older_than)]), what)
        compare(out, truth, lambda s: not s.startswith("sparse_"), what)
        with open(os.path.join(out, "manifest.json")) as f:
            tables = json.load(f)["tables"]
        for table, slots in truth.items():
            if "step_filter" in slots:
                said = tables[table].get("global_step", {})
                check(said.get("step") == step and "CoalescedHashtable_" in said.get("from", ""),
                      f"{what}: {table}'s global step {said}, not the engine table's buffer")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {what}")


def case_hdf5(args):
    """--format hdf5: every table by id equal to the truth, /dense equal to model.pt as torch reads it."""
    for run, step in CHECKPOINTS:
        ckpt = os.path.join(args.fixture, run, f"ckpt_{step}")
        out = os.path.join(args.work, f"{run}_ckpt_{step}")
        shutil.rmtree(out, ignore_errors=True)
        what = f"hdf5 {run}/ckpt_{step} np {args.np}"
        expect_success(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out, "--format", "hdf5",
                                                     "--filter-optimizer"]), what)
        path = os.path.join(out, "model.h5")
        compare(out, truth_rows(args.fixture, run, step), lambda s: not s.startswith("sparse_"), what,
                got=hdf5_rows(path))
        state = torch.load(os.path.join(ckpt, "model.pt"))
        with h5py.File(path, "r") as f:
            for key, tensor in state.items():
                name = key[len("dense_arch."):] if key.startswith("dense_arch.") else key
                check(np.array_equal(f["dense"][name][()], tensor.numpy()), f"{what}: /dense/{name} != model.pt's")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {what}")


def case_dense(args):
    """The run's own dense_arch.pt filled from each checkpoint's model.pt, frozen: it scores sample_inputs as the
    eager architecture with the checkpoint's weights, and as the sample_io it recorded."""
    for run, step in CHECKPOINTS:
        ckpt = os.path.join(args.fixture, run, f"ckpt_{step}")
        arch = os.path.join(args.fixture, run, "dense_arch.pt")
        sample = os.path.join(args.fixture, run, "sample_inputs.safetensors")
        out = os.path.join(args.work, f"{run}_ckpt_{step}")
        shutil.rmtree(out, ignore_errors=True)
        what = f"dense {run}/ckpt_{step} np {args.np}"
        expect_success(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out, "--filter-optimizer",
                                                     "--dense-model", arch, "--sample-inputs", sample,
                                                     "--outputs", "ctr"]), what)
        eager = torch.jit.load(arch)
        state = torch.load(os.path.join(ckpt, "model.pt"))
        eager.load_state_dict({k[len("dense_arch."):]: v for k, v in state.items() if k.startswith("dense_arch.")})
        eager.eval()
        exported = torch.jit.load(os.path.join(out, "fx_user_model", "user_model.pt"))
        header, _, data = read_safetensors(sample)
        x = torch.from_numpy(np.frombuffer(tensor_bytes(header, data, "x"), dtype=np.float32).reshape(
            header["x"]["shape"]).copy())
        torch.manual_seed(5)
        diff = 0.0
        for batch in (x, torch.randn(64, x.shape[1])):
            with torch.no_grad():
                diff = max(diff, float((exported(batch) - eager(batch)).abs().max()))
        check(diff <= 1e-6, f"{what}: the export scores {diff} away from the eager model with the checkpoint's weights")
        with open(os.path.join(out, "manifest.json")) as f:
            network = json.load(f)["dense_network"]
        check(network["frozen"] and network["scored"], f"{what}: manifest dense_network {network}")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {what}")
        print(f"ok: {what}: frozen, max |diff| {diff:.3g} against the eager model")


def case_inspect(args):
    """inspect names each run's optimizer as RecIS names its state: SparseAdamW "adamw", SparseAdamWTF "adamw_tf"."""
    for run, step, optimizer in (("A", 6, "adamw"), ("C", 5, "adamw_tf")):
        result = subprocess.run([args.binary, "inspect", os.path.join(args.fixture, run, f"ckpt_{step}"), "--json"],
                                capture_output=True, text=True)
        check(result.returncode == 0, f"inspect {run}/ckpt_{step}: exit {result.returncode}: {result.stderr}")
        said = json.loads(result.stdout).get("optimizer")
        check(said == optimizer, f"inspect {run}/ckpt_{step}: optimizer {said!r}, RecIS's is {optimizer!r}")
        print(f"ok: inspect {run}/ckpt_{step}: optimizer {said}")


def export_case(case):
    """Every real checkpoint exported as `case` says, compared with its truth by id, then verified."""
    return lambda args: export_and_compare(case, args)


def export_and_compare(case, args):
    for run, step in CHECKPOINTS:
        ckpt = os.path.join(args.fixture, run, f"ckpt_{step}")
        truth = truth_rows(args.fixture, run, step)
        options = {"copy": [], "filter": ["--filter-optimizer"], "reshard": ["--filter-optimizer", "--reshard", "3"]}[case]
        out = os.path.join(args.work, f"{run}_ckpt_{step}")
        shutil.rmtree(out, ignore_errors=True)
        what = f"{case} {run}/ckpt_{step} np {args.np}"
        expect_success(mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out] + options), what)
        keeps_optimizer = case == "copy"
        compare(out, truth, lambda s: keeps_optimizer or not s.startswith("sparse_"), what)
        if case == "copy":
            for name in sorted(n for n in os.listdir(ckpt) if n.endswith(".safetensors")):
                with open(os.path.join(ckpt, name), "rb") as a, open(os.path.join(out, name), "rb") as b:
                    check(a.read() == b.read(), f"{what}: {name} is not the source byte for byte")
        verified = mpirun(args.binary, args.np, ["verify", out])
        expect_success(verified, f"verify {what}")


CASES = {"copy": export_case("copy"), "filter": export_case("filter"), "reshard": export_case("reshard"),
         "evict": case_evict, "hdf5": case_hdf5, "dense": case_dense, "inspect": case_inspect}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
