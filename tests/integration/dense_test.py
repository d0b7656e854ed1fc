#!/usr/bin/python3
"""Integration tests of the dense export: recis-convert --dense-model under mpirun, checked with Debian's
python3-torch against the eager module carrying the checkpoint's weights.

    dense_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases: export (frozen model equals the eager reference at batch 1, 7 and 256, no parameters left, sample_io
reproduces), bad (each bad dense input exits 3 and publishes nothing).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, REPO_ROOT, check, check_clean_parent, expect_failure, expect_success,  # noqa: E402
                         fresh, latest_checkpoint, mpirun, read_safetensors, tree_digest)

FG = os.path.join(REPO_ROOT, "configs", "example-fg.json")
MC = os.path.join(REPO_ROOT, "configs", "example-mc.json")


def dense_args(fixture, out, extra=(), dense_model=None, outputs="ctr,cvr", mc=MC):
    return ["--ckpt-dir", fixture, "--export-dir", out, "--filter-optimizer", "--fg", FG, "--mc", mc,
            "--dense-model", dense_model or os.path.join(fixture, "dense_arch.pt"), "--outputs", outputs] + list(extra)


def eager_reference(fixture):
    """The scripted architecture with the checkpoint's weights: what the export must compute."""
    module = torch.jit.load(os.path.join(fixture, "dense_arch.pt"))
    state = torch.load(os.path.join(latest_checkpoint(fixture), "model.pt"))
    prefix = "dense_arch."
    module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    module.eval()
    return module


def case_export(args):
    parent = fresh(args.work, "dense")
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, args.np, dense_args(args.fixture, out))
    expect_success(result, "dense export")
    check("dense: fx_user_model/user_model.pt" in result.stdout, "no dense stage line")
    folder = os.path.join(out, "fx_user_model")
    check(sorted(os.listdir(folder)) == sorted(["user_model.pt", "output_info.json", "inputs_dict_lite.json",
                                                "params_order.json", "input_columns.json", "graph.txt",
                                                "sample_io.safetensors"]), f"fx_user_model holds {os.listdir(folder)}")
    exported = torch.jit.load(os.path.join(folder, "user_model.pt"))
    check(len(list(exported.parameters())) == 0 and len(exported.state_dict()) == 0, "the exported module is not frozen")
    reference = eager_reference(args.fixture)
    fresh_weights = torch.jit.load(os.path.join(args.fixture, "dense_arch.pt")).eval()
    torch.manual_seed(1)
    for batch in (1, 7, 256):
        user, item = torch.randn(batch, 16), torch.randn(batch, 24)
        with torch.no_grad():
            got, want, unfilled = exported(user, item), reference(user, item), fresh_weights(user, item)
        for g, w in zip(got, want):
            check(g.shape == (batch, 1), f"output shape {tuple(g.shape)} at batch {batch}")
            check(torch.allclose(g, w, atol=1e-6, rtol=0), f"batch {batch}: max diff {float((g - w).abs().max())}")
        check(not torch.allclose(got[0], unfilled[0], atol=1e-4), "the export still carries the TorchScript's own weights")

    with open(os.path.join(folder, "output_info.json")) as f:
        info = json.load(f)
    check([n["OutputNodeName"] for n in info["OutputNodes"]] == ["ctr", "cvr"], "output names are not --outputs")
    with open(os.path.join(folder, "params_order.json")) as f:
        check(json.load(f) == ["user_columns", "item_columns"], "params_order.json is not the forward order")
    with open(os.path.join(folder, "input_columns.json"), "rb") as a, open(MC, "rb") as b:
        check(a.read() == b.read(), "input_columns.json is not the mc config")

    # sample_io.safetensors: the sample inputs and the reference outputs; the export reproduces them
    header, _, data = read_safetensors(os.path.join(folder, "sample_io.safetensors"))
    def tensor(name):
        begin, end = header[name]["data_offsets"]
        return torch.from_numpy(np.frombuffer(data[begin:end], dtype="<f4").copy()).reshape(header[name]["shape"])
    user, item = tensor("input.user_columns"), tensor("input.item_columns")
    check(user.shape == (8, 16) and item.shape == (8, 24), "sample inputs are not sized from fg/mc at batch 8")
    with torch.no_grad():
        replay = exported(user, item)
    for name, got in zip(("output.ctr", "output.cvr"), replay):
        check(torch.allclose(got, tensor(name), atol=1e-6, rtol=0), f"{name} does not reproduce")

    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    listed = {m["name"] for m in manifest["metadata_files"]}
    check("fx_user_model/user_model.pt" in listed and "fx_user_model/sample_io.safetensors" in listed,
          "the manifest does not list the dense files")

    # the same export from given sample inputs: --sample-inputs takes the tensors by forward-argument name
    samples = os.path.join(parent, "samples.safetensors")
    blob_user, blob_item = torch.randn(3, 16).numpy().astype("<f4").tobytes(), torch.randn(3, 24).numpy().astype("<f4").tobytes()
    head = json.dumps({"user_columns": {"dtype": "F32", "shape": [3, 16], "data_offsets": [0, len(blob_user)]},
                       "item_columns": {"dtype": "F32", "shape": [3, 24],
                                        "data_offsets": [len(blob_user), len(blob_user) + len(blob_item)]}}).encode()
    with open(samples, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + blob_user + blob_item)
    out2 = os.path.join(parent, "export2")
    expect_success(mpirun(args.binary, args.np, dense_args(args.fixture, out2, ["--sample-inputs", samples])),
                   "--sample-inputs")
    header2, _, _ = read_safetensors(os.path.join(out2, "fx_user_model", "sample_io.safetensors"))
    check(header2["input.user_columns"]["shape"] == [3, 16], "--sample-inputs were not used")


def case_single_output(args):
    """A model with one input and one output, found under another prefix (--dense-name), default output names."""
    parent = fresh(args.work, "single")
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out, "--fg", FG, "--mc", MC,
                                           "--dense-model", os.path.join(args.fixture, "single_arch.pt"),
                                           "--dense-name", "single_arch", "--model-name", "scorer",
                                           "--export-folder", "dense"])
    expect_success(result, "single-output export")
    exported = torch.jit.load(os.path.join(out, "dense", "scorer.pt"))
    reference = torch.jit.load(os.path.join(args.fixture, "single_arch.pt"))
    state = torch.load(os.path.join(latest_checkpoint(args.fixture), "model.pt"))
    reference.load_state_dict({k[len("single_arch."):]: v for k, v in state.items() if k.startswith("single_arch.")})
    reference.eval()
    for batch in (1, 7, 256):
        x = torch.randn(batch, 16)
        with torch.no_grad():
            check(torch.allclose(exported(x), reference(x), atol=1e-6, rtol=0), f"single output differs at batch {batch}")
    with open(os.path.join(out, "dense", "output_info.json")) as f:
        check([n["OutputNodeName"] for n in json.load(f)["OutputNodes"]] == ["torch_output_0"], "default output name")

    # keys under the prefix that the module does not use are a warning, not an error
    root = os.path.join(fresh(args.work, "unused_src"), "output")
    shutil.copytree(args.fixture, root)
    resave_model_pt(latest_checkpoint(root), lambda s: s.__setitem__("single_arch.extra.weight", torch.zeros(1)))
    out2 = os.path.join(fresh(args.work, "unused"), "export")
    result = mpirun(args.binary, args.np, ["--ckpt-dir", root, "--export-dir", out2, "--fg", FG, "--mc", MC,
                                           "--dense-model", os.path.join(args.fixture, "single_arch.pt"),
                                           "--dense-name", "single_arch"])
    expect_success(result, "unused model.pt key")
    check("warning: model.pt key single_arch.extra.weight is not used" in result.stderr,
          f"no warning about the unused key: {result.stderr}")


def resave_model_pt(ckpt, mutate):
    path = os.path.join(ckpt, "model.pt")
    state = torch.load(path)
    mutate(state)
    torch.save(state, path)


def case_bad(args):
    def checkpoint_copy(name, mutate=None):
        parent = fresh(args.work, f"bad_{name}_src")
        root = os.path.join(parent, "output")
        shutil.copytree(args.fixture, root)
        if mutate:
            resave_model_pt(latest_checkpoint(root), mutate)
        return root

    bad_mc = os.path.join(args.work, "bad_mc.json")
    with open(bad_mc, "w") as f:
        json.dump({"user_columns": ["user_id", "no_such_feature"], "item_columns": ["item_id"]}, f)

    cases = [
        ("missing_weight", checkpoint_copy("missing_weight", lambda s: s.pop("dense_arch.ctr.bias")), {},
         "missing dense_arch.ctr.bias"),
        ("shape_mismatch", checkpoint_copy("shape_mismatch", lambda s: s.__setitem__("dense_arch.cvr.weight", torch.zeros(2, 16))),
         {}, "dense_arch.cvr.weight is [2,16]"),
        ("not_torchscript", args.fixture, {"dense_model": os.path.join(latest_checkpoint(args.fixture), "model.pt")},
         "is not a TorchScript file"),
        ("wrong_output_count", args.fixture, {"outputs": "ctr"}, "returns 2 outputs but --outputs names 1"),
        ("mc_column_not_in_fg", args.fixture, {"mc": bad_mc}, "has no feature \"no_such_feature\""),
    ]
    for name, fixture, options, text in cases:
        before = tree_digest(fixture)
        parent = fresh(args.work, f"bad_{name}")
        out = os.path.join(parent, "export")
        result = mpirun(args.binary, args.np, dense_args(fixture, out, **options))
        expect_failure(result, 3, text, name)
        check_clean_parent(parent, [])
        check(tree_digest(fixture) == before, f"{name}: the source was modified")
        print(f"ok: {name}: {[l for l in result.stderr.splitlines() if 'error:' in l][0]}")


CASES = {"export": case_export, "bad": case_bad, "single_output": case_single_output}


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
