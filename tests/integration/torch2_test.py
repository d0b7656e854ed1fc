#!/usr/bin/python3
"""torch 2.x against the real binary: fixtures written by Debian 13's torch 2.6 (scripts/torch2-root.sh, in its
own root), exports loaded and scored by that same torch, as a user's would be.

    torch2_test.py CASE --binary BIN --fixture tests/fixtures/recis-v1.1-real --work DIR [--np N]
    CASE: dense | archive

dense: dense architectures scripted by torch 2.6 with nn.MultiheadAttention, F.scaled_dot_product_attention,
LayerNorm and GELU(tanh), which the plugin's libtorch 1.13 cannot compile, export with exit 0: the weights are put
into the archive byte for byte, the manifest says the model is not frozen and why, verify passes, and torch 2.6
scores the exported model as the eager model with the checkpoint's weights (max |diff| <= 1e-6).
archive: a model.pt and extra.pt torch 2.6 wrote (`.data/serialization_id`, storages tagged cuda:0, rooted at
archive/) feed the global step, the HDF5 export's /dense group (compared with torch's own values) and inspect.

Exits 77 (skipped) when the torch 2.x root has not been built (scripts/torch2-root.sh create; .ci/run builds it).
With RECIS_IN_TORCH2_ROOT=1 the test itself runs inside that root (scripts/torch2-build.sh: the converter built
against the root's libtorch 2.6), and with RECIS_EXPECT_FROZEN=1 the plugin must freeze and score the models.
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, expect_success, fresh, mpirun, run_cases  # noqa: E402

TORCH2 = os.path.join(REPO_ROOT, "scripts", "torch2-root.sh")
TOOLS = os.path.join(REPO_ROOT, "tests", "integration", "torch2_tools.py")
SKIPPED = 77
MODELS = {"attention": "ctr", "sdpa": "ctr,cvr"}
IN_ROOT = os.environ.get("RECIS_IN_TORCH2_ROOT") == "1"
EXPECT_FROZEN = os.environ.get("RECIS_EXPECT_FROZEN") == "1"


def torch2(*args):
    """Runs torch2_tools.py with torch 2.x (in its root, unless already there); its stdout."""
    command = [sys.executable, TOOLS] if IN_ROOT else [TORCH2, "python", TOOLS]
    result = subprocess.run(command + list(args), capture_output=True, text=True)
    check(result.returncode == 0, f"torch2_tools.py {args[0]}: exit {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def fixture(args):
    out = os.path.join(args.work, "torch2_fixture")
    torch2("make", "--sparse-from", os.path.join(args.fixture, "A", "ckpt_6"), out)
    with open(os.path.join(out, "torch_version")) as f:
        version = f.read().strip()
    check(version.startswith("2."), f"the fixture was written by torch {version}, not 2.x")
    return out, version


def case_dense(args):
    out, version = fixture(args)
    for model, outputs in MODELS.items():
        export = os.path.join(fresh(args.work, f"dense_{model}"), "export")
        result = mpirun(args.binary, args.np, [
            "--ckpt-dir", os.path.join(out, "ckpt_6"), "--export-dir", export, "--filter-optimizer",
            "--dense-model", os.path.join(out, f"{model}.pt"), "--dense-name", model,
            "--sample-inputs", os.path.join(out, "sample_inputs.safetensors"), "--outputs", outputs])
        expect_success(result, f"{model}: export")
        said = [line for line in result.stderr.splitlines() if "not frozen" in line]
        with open(os.path.join(export, "manifest.json")) as f:
            network = json.load(f)["dense_network"]
        check(network["file"] == "fx_user_model/user_model.pt", f"{model}: manifest dense_network {network}")
        if EXPECT_FROZEN:  # a plugin built against this torch's libtorch
            check(not said and network["frozen"] is True and network["scored"] is True,
                  f"{model}: expected a frozen, scored model: {said} {network}")
            said = ["frozen and scored by the plugin"]
        else:
            check(len(said) == 1 and "scaled_dot_product_attention" in said[0],
                  f"{model}: expected one line saying why the model is not frozen, got {said}")
            check(network["frozen"] is False and network["scored"] is False and
                  "scaled_dot_product_attention" in network["not_frozen_because"],
                  f"{model}: manifest dense_network {network}")
        expect_success(mpirun(args.binary, args.np, ["verify", export]), f"{model}: verify")
        scored = json.loads(torch2("score", out, model, os.path.join(export, "fx_user_model", "user_model.pt")))
        check(scored["max_diff"] <= 1e-6, f"{model}: torch {version} scores the export {scored['max_diff']} away "
                                          "from the eager model with the checkpoint's weights")
        print(f"ok: {model}: scripted by torch {version}, exported at np {args.np}, scored by torch "
              f"{scored['torch']}: max |diff| {scored['max_diff']:.3g}; {said[0][-110:]}")


def case_archive(args):
    """model.pt and extra.pt as torch 2.6 writes them, storages tagged cuda:0."""
    out, version = fixture(args)
    ckpt = os.path.join(out, "ckpt_6")
    expected = os.path.join(args.work, "model_pt.npz")
    torch2("dump", os.path.join(ckpt, "model.pt"), expected)
    want = np.load(expected)
    export = os.path.join(fresh(args.work, "archive_hdf5"), "export")
    result = mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", export, "--format", "hdf5",
                                           "--dense-name", "attention", "--evict-older-than", "2"])
    expect_success(result, "hdf5 export")
    check("global step of \"user_id\": 6 (model.pt sparse_arch.engine._ht.CoalescedHashtable_" in result.stdout,
          "the global step was not read from torch 2.x's model.pt")
    # /dense/<name>: every model.pt tensor, the --dense-name prefix stripped
    expected_names = {(k[len("attention."):] if k.startswith("attention.") else k): k for k in want.files}
    with h5py.File(os.path.join(export, "model.h5"), "r") as h5:
        names = []
        h5["dense"].visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        check(sorted(names) == sorted(expected_names), f"/dense holds {sorted(names)}")
        for name in names:
            check(np.array_equal(h5["dense"][name][()], want[expected_names[name]]),
                  f"/dense/{name} differs from torch's")
    expect_success(mpirun(args.binary, args.np, ["verify", export]), "verify")
    inspected = subprocess.run([args.binary, "inspect", ckpt], capture_output=True, text=True)
    expect_success(inspected, "inspect")
    check("sdpa.kv.weight float32 [64, 16]" in inspected.stdout, "inspect does not list torch 2.x's tensors")
    print(f"ok: model.pt and extra.pt of torch {version} (cuda:0 storages): global step, /dense ({len(names)} "
          f"tensors equal torch's) and inspect")


CASES = {"dense": case_dense, "archive": case_archive}

if __name__ == "__main__":
    if not IN_ROOT and subprocess.run([TORCH2, "path"], capture_output=True).returncode != 0:
        print("SKIPPED: no torch 2.x root (scripts/torch2-root.sh create)")
        sys.exit(SKIPPED)
    sys.exit(run_cases(CASES))
