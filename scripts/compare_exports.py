#!/usr/bin/python3
"""Runs two builds of recis-convert on the same jobs and says whether their exports are identical.

For refactors that must not change a byte: build the previous main somewhere (git worktree add /tmp/base main &&
cmake -S /tmp/base -B /tmp/base/build && cmake --build /tmp/base/build), then

    scripts/compare_exports.py --baseline /tmp/base/build/recis-convert --candidate build/recis-convert

Every file of every export must be byte-identical, except run_record.json (it records times and hosts) and, with
--format hdf5, model.h5 (HDF5 stamps object times into it): model.h5 is compared dataset by dataset and
attribute by attribute instead, and manifest.json with model.h5's checksum left out. Fixtures are written by the
project's own scripts into --work. Exit status 0 when every job matches.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"


def mpirun(binary, np_, args):
    command = ["mpirun", "--oversubscribe", "-np", str(np_)]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return subprocess.run(command + [binary] + args, capture_output=True, text=True)


def h5_content(path):
    import h5py
    out = {}

    def visit(name, obj):
        attrs = {k: (v.tobytes() if hasattr(v, "tobytes") else v) for k, v in obj.attrs.items()}
        out[name] = (obj[()].tobytes() if isinstance(obj, h5py.Dataset) else None, sorted(attrs.items()))

    with h5py.File(path, "r") as f:
        out["/"] = (None, sorted((k, v) for k, v in f.attrs.items()))
        f.visititems(visit)
    return out


def export_content(out):
    content = {}
    for dirpath, _, files in os.walk(out):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, out)
            if rel == "run_record.json":
                continue
            if rel == "model.h5":
                content[rel] = h5_content(path)
                continue
            with open(path, "rb") as f:
                data = f.read()
            if rel == "manifest.json" and os.path.exists(os.path.join(out, "model.h5")):
                manifest = json.loads(data)
                for entry in manifest.get("metadata_files", []):
                    if entry.get("name") == "model.h5":
                        entry.pop("xxh3_64")
                data = json.dumps(manifest, sort_keys=True).encode()
            content[rel] = hashlib.sha256(data).hexdigest()
    return content


def jobs(work):
    """(name, arguments) of every export job: each option family, alone and in the combinations that take
    another road through the code. A job whose arguments start with "merge" runs `merge` on the exports the
    baseline made, at np 1, for the jobs it names."""
    recis = os.path.join(work, "fixtures", "adamw")
    run = os.path.join(work, "fixtures", "run")  # a training run: ckpt_100, 150, 200, every table with step_filter
    big = os.path.join(work, "fixtures", "big")  # tests/integration's split fixture: a file of 5 MiB, split at np 3
    hugectr = os.path.join(work, "fixtures", "hugectr")
    configs = os.path.join(ROOT, "configs")
    r = ["--ckpt-dir", recis]
    yield "copy", r
    yield "filter", r + ["--filter-optimizer", "--fg", f"{configs}/example-fg.json", "--mc", f"{configs}/example-mc.json"]
    yield "drop_slot", r + ["--drop-slot", "step_filter", "--drop-slot", "sparse_adamw_exp_avg"]
    yield "int8", r + ["--filter-optimizer", "--quantize-embeddings", "int8"]
    yield "int8_no_filter", r + ["--quantize-embeddings", "int8", "--buffer-mib", "1"]
    for dtype in ("fp16", "bf16", "int4", "int2"):
        yield dtype, r + ["--filter-optimizer", "--quantize-embeddings", dtype]
    yield "quantize_table", r + ["--quantize-embeddings", "fp16", "--quantize-table", "user_id=int4"]
    yield "balance_size", r + ["--filter-optimizer", "--balance", "size", "--buffer-mib", "1"]
    yield "resume", r + ["--filter-optimizer", "--resume"]
    yield "hdf5", r + ["--format", "hdf5"]
    yield "hdf5_filter", r + ["--format", "hdf5", "--filter-optimizer", "--buffer-mib", "1"]
    yield "hdf5_int4", r + ["--format", "hdf5", "--filter-optimizer", "--quantize-embeddings", "int4"]
    yield "reshard", r + ["--reshard", "5"]
    yield "reshard_int8", r + ["--reshard", "2", "--filter-optimizer", "--quantize-embeddings", "int8"]
    yield "reshard_hdf5", r + ["--reshard", "4", "--format", "hdf5"]
    yield "split_copy", ["--ckpt-dir", big, "--chunk-mib", "1"]
    yield "split_filter", ["--ckpt-dir", big, "--chunk-mib", "1", "--filter-optimizer", "--quantize-embeddings", "fp16"]
    yield "split_resume", ["--ckpt-dir", big, "--chunk-mib", "1", "--resume"]
    t = ["--ckpt-dir", run]
    yield "run_full", t + ["--filter-optimizer"]
    yield "run_base", ["--ckpt-dir", f"{run}/ckpt_100", "--filter-optimizer"]
    yield "evict_older", t + ["--evict-older-than", "60"]
    yield "evict_l2", t + ["--evict-l2-below", "0.5", "--filter-optimizer"]
    yield "evict_both_int8", t + ["--evict-older-than", "60", "--evict-l2-below", "0.3", "--quantize-embeddings", "int8"]
    yield "evict_reshard", t + ["--evict-older-than", "60", "--reshard", "3", "--buffer-mib", "1"]
    yield "evict_hdf5", t + ["--evict-older-than", "60", "--format", "hdf5"]
    yield "evict_reshard_hdf5", t + ["--evict-l2-below", "0.5", "--reshard", "3", "--format", "hdf5"]
    yield "delta", t + ["--delta-since", "100", "--filter-optimizer"]
    yield "delta_150", ["--ckpt-dir", f"{run}/ckpt_150", "--delta-since", "100", "--filter-optimizer"]
    yield "delta_200", t + ["--delta-since", "150", "--filter-optimizer"]
    yield "delta_reshard", t + ["--delta-since", "100", "--reshard", "2"]
    yield "delta_hdf5", t + ["--delta-since", "100", "--format", "hdf5"]
    yield "delta_evict", t + ["--delta-since", "100", "--evict-l2-below", "0.5"]
    yield "merge", ["merge", "run_base", "delta"]
    yield "merge_two", ["merge", "run_base", "delta_150", "delta_200", "--buffer-mib", "1"]
    yield "merge_evict", ["merge", "run_base", "delta_150", "delta_200", "--evict-older-than", "60"]
    for model in sorted(os.listdir(hugectr)):  # as tests/integration/hugectr_test.py spells them
        directory = os.path.join(hugectr, model)
        h = ["--source", "hugectr", "--graph", f"{directory}/{model}.json", "--dense", f"{directory}/{model}_dense_0.model"]
        for path in sorted(glob.glob(f"{directory}/{model}*_sparse_0.model")):
            h += ["--sparse", path]
        yield f"hugectr_{model}", h
        yield f"hugectr_{model}_hdf5", h + ["--format", "hdf5"]
        yield f"hugectr_{model}_int8", h + ["--quantize-embeddings", "int8"]
        yield f"hugectr_{model}_evict", h + ["--evict-l2-below", "0.5"]
        yield f"hugectr_{model}_reshard", h + ["--reshard", "3"]
        yield f"hugectr_{model}_evict_reshard_hdf5", h + ["--evict-l2-below", "0.5", "--reshard", "3", "--format", "hdf5"]


def run_job(binary, np_, name, job, out_dir):
    """Runs one job; returns (exit status, the export's content or the failure's first line)."""
    out = os.path.join(out_dir, name)
    shutil.rmtree(out, ignore_errors=True)
    if job[0] == "merge":
        inputs = [os.path.join(out_dir, "..", "inputs", a) for a in job[1:] if not a.startswith("-") and
                  not a.isdigit()]
        options = [a for a in job[1:] if a.startswith("-") or a.isdigit()]
        result = mpirun(binary, np_, ["merge"] + inputs + options + ["--export-dir", out, "--quiet"])
    else:
        result = mpirun(binary, np_, job + ["--export-dir", out, "--quiet"])
    first_line = (result.stderr.splitlines() or [""])[0]  # a failure: its one-line message
    return result.returncode, export_content(out) if result.returncode == 0 else first_line


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--work", default="/tmp/recis-compare")
    parser.add_argument("--np", default="1,3", help="rank counts to run each job with")
    parser.add_argument("--only", help="run only the jobs whose name contains this")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    fixtures = os.path.join(args.work, "fixtures")
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_fixture.py", f"{fixtures}/adamw", "--optimizer", "adamw",
                    "--parallel", "4"], check=True, capture_output=True)
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_hugectr_fixture.py", f"{fixtures}/hugectr"], check=True,
                   capture_output=True)
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_fixture.py", f"{fixtures}/run", "--training-run", "--steps",
                    "100,150,200", "--step-filter-everywhere"], check=True, capture_output=True)
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_fixture.py", f"{fixtures}/big", "--ranks", "1", "--parallel", "4",
                    "--writer-per-table", "--steps", "100", "--table", "big:F32:64:21000", "--table", "a:F32:16:7000",
                    "--table", "b:F16:16:13000", "--table", "c:BF16:32:7000"], check=True, capture_output=True)
    all_jobs = list(jobs(args.work))
    # the inputs of the merge jobs: the baseline's exports, at np 1
    inputs = os.path.join(args.work, "inputs")
    os.makedirs(inputs)
    os.makedirs(os.path.join(args.work, "out"))
    for name, job in all_jobs:
        if any(name in j for n, j in all_jobs if j[0] == "merge"):
            status, content = run_job(args.baseline, 1, name, job, inputs)
            if status != 0:
                sys.exit(f"the baseline cannot make {name}, a merge's input: {content}")
    failures = 0
    for name, job in all_jobs:
        if args.only and args.only not in name:
            continue
        for np_ in [int(n) for n in args.np.split(",")]:
            contents = []
            for label, binary in (("baseline", args.baseline), ("candidate", args.candidate)):
                contents.append(run_job(binary, np_, f"{name}_np{np_}_{label}", job, os.path.join(args.work, "out")))
            same = contents[0] == contents[1]
            failures += not same
            print(f"{'same' if same else 'DIFFERENT'}: {name} np={np_} (exit {contents[0][0]} / {contents[1][0]})",
                  flush=True)
            if not same and contents[0][0] == 0 and contents[1][0] == 0:
                a, b = contents[0][1], contents[1][1]
                for key in sorted(set(a) | set(b)):
                    if a.get(key) != b.get(key):
                        print(f"    differs: {key}")
            elif not same:
                print(f"    baseline: {contents[0][1]!s:.300}\n    candidate: {contents[1][1]!s:.300}")
    print("all exports identical" if failures == 0 else f"{failures} job(s) differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
