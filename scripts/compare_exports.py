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
    recis = os.path.join(work, "fixtures", "adamw")
    hugectr = os.path.join(work, "fixtures", "hugectr")
    configs = os.path.join(ROOT, "configs")
    r = ["--ckpt-dir", recis]
    yield "copy", r
    yield "filter", r + ["--filter-optimizer", "--fg", f"{configs}/example-fg.json", "--mc", f"{configs}/example-mc.json"]
    yield "drop_slot", r + ["--drop-slot", "step_filter", "--drop-slot", "sparse_adamw_exp_avg"]
    yield "int8", r + ["--filter-optimizer", "--quantize-embeddings", "int8"]
    yield "int8_no_filter", r + ["--quantize-embeddings", "int8", "--buffer-mib", "1"]
    yield "balance_size", r + ["--filter-optimizer", "--balance", "size", "--buffer-mib", "1"]
    yield "hdf5", r + ["--format", "hdf5"]
    yield "hdf5_filter", r + ["--format", "hdf5", "--filter-optimizer", "--buffer-mib", "1"]
    for model in sorted(os.listdir(hugectr)):  # as tests/integration/hugectr_test.py spells them
        directory = os.path.join(hugectr, model)
        h = ["--source", "hugectr", "--graph", f"{directory}/{model}.json", "--dense", f"{directory}/{model}_dense_0.model"]
        for path in sorted(glob.glob(f"{directory}/{model}*_sparse_0.model")):
            h += ["--sparse", path]
        yield f"hugectr_{model}", h
        yield f"hugectr_{model}_hdf5", h + ["--format", "hdf5"]

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--candidate", required=True)
    parser.add_argument("--work", default="/tmp/recis-compare")
    parser.add_argument("--np", default="1,3", help="rank counts to run each job with")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    fixtures = os.path.join(args.work, "fixtures")
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_fixture.py", f"{fixtures}/adamw", "--optimizer", "adamw",
                    "--parallel", "4"], check=True, capture_output=True)
    subprocess.run([PYTHON, f"{ROOT}/scripts/make_hugectr_fixture.py", f"{fixtures}/hugectr"], check=True,
                   capture_output=True)
    os.makedirs(os.path.join(args.work, "out"))
    failures = 0
    for name, job in jobs(args.work):
        for np_ in [int(n) for n in args.np.split(",")]:
            contents = []
            for label, binary in (("baseline", args.baseline), ("candidate", args.candidate)):
                out = os.path.join(args.work, "out", f"{name}_np{np_}_{label}")
                shutil.rmtree(out, ignore_errors=True)
                result = mpirun(binary, np_, job + ["--export-dir", out, "--quiet"])
                first_line = (result.stderr.splitlines() or [""])[0]  # a failure: its one-line message
                contents.append((result.returncode, export_content(out) if result.returncode == 0 else first_line))
            same = contents[0] == contents[1]
            failures += not same
            print(f"{'same' if same else 'DIFFERENT'}: {name} np={np_} (exit {contents[0][0]} / {contents[1][0]})")
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
