#!/usr/bin/python3
"""HugeCTR models in (issues 8, 18): sparse tables exported in the RecIS layout, row for row, at any N; the dense
network as TorchScript against an independent numpy reference, for the issue-8 models and for models shaped like
hugectr2onnx's test suite; bad models fail with code 3 and publish nothing. Fixtures come from
scripts/make_hugectr_fixture.py.

    hugectr_test.py CASE --binary BIN --fixture DIR --work DIR [--np N]
"""
import glob
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, check, check_clean_parent, expect_failure, expect_success, fresh,  # noqa: E402
                         mpirun, read_safetensors, tree_digest)

MODELS = ("dcn", "wdl", "deepfm", "dlrm")
# issue 18; "losses" is no hugectr2onnx test model but the two loss types none of them uses
HUGECTR2ONNX_MODELS = ("din", "bst", "mmoe", "ncf", "gmf", "neumf", "dlrm_mlp", "losses")


def model_args(fixture, model, sparse=None, dense=True):
    directory = os.path.join(fixture, model)
    args = ["--source", "hugectr", "--graph", os.path.join(directory, f"{model}.json")]
    if dense:
        args += ["--dense", os.path.join(directory, f"{model}_dense_0.model")]
    for path in sparse or sorted(glob.glob(os.path.join(directory, f"{model}*_sparse_0.model"))):
        args += ["--sparse", path]
    return args


def source_rows(graph, path, embedding):
    """(keys, vectors, slot ids or None) of a sparse model, read independently of recis-convert."""
    vec = embedding["sparse_embedding_hparam"]["embedding_vec_size"]
    localized = embedding["type"].startswith("Localized")
    if os.path.isdir(path):
        keys = np.fromfile(os.path.join(path, "key"), "<i8")
        vectors = np.fromfile(os.path.join(path, "emb_vector"), "<f4").reshape(-1, vec)
        slots = np.fromfile(os.path.join(path, "slot_id"), "<u8") if localized else None
        return keys, vectors, slots
    key = "<u4" if graph.get("solver", {}).get("input_key_type") == "I32" else "<i8"
    record = np.dtype([("key", key)] + ([("slot", "<u8")] if localized else []) + [("vec", "<f4", (vec,))])
    rows = np.fromfile(path, record)
    return rows["key"].astype(np.int64), rows["vec"], rows["slot"] if localized else None


def check_tables(out, fixture, model):
    with open(os.path.join(fixture, model, f"{model}.json")) as f:
        graph = json.load(f)
    embeddings = [layer for layer in graph["layers"] if "Embedding" in layer["type"]]
    sparse = sorted(glob.glob(os.path.join(fixture, model, f"{model}*_sparse_0.model")))
    with open(os.path.join(out, "tensorkey.json")) as f:
        tensorkey = json.load(f)
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    for i, (embedding, path) in enumerate(zip(embeddings, sparse)):
        table = embedding["top"]
        keys, vectors, slots = source_rows(graph, path, embedding)
        header, _, data = read_safetensors(os.path.join(out, f"model-{i:06d}-of-{len(embeddings):06d}.safetensors"))

        def tensor(slot, dtype):
            name = f"{table}.{slot}/part_0_1"
            check(tensorkey[name] == f"{table}@{slot}^00000@65536@65536", f"tensorkey of {name}: {tensorkey.get(name)}")
            begin, end = header[name]["data_offsets"]
            return np.frombuffer(data[begin:end], dtype)

        check(np.array_equal(tensor("id", "<i8"), keys), f"{model} {table}: ids differ from the source keys")
        got = tensor("embedding", "<f4").reshape(-1, vectors.shape[1])
        check(got.tobytes() == vectors.tobytes(), f"{model} {table}: embedding rows differ from the source")
        if slots is not None:
            check(np.array_equal(tensor("slot_id", "<u8"), slots), f"{model} {table}: slot ids differ")
        else:
            check(f"{table}.slot_id/part_0_1" not in header, f"{model} {table}: a slot_id for a distributed table")
        t = manifest["tables"][table]
        check((t["rows"], t["dim"], t["dtype"]) == (len(keys), vectors.shape[1], "F32"), f"manifest: {t}")


def check_network(out, fixture, model):
    """The exported TorchScript against the fixture's independent numpy forward pass (atol 1e-5), on the fixture's
    batch and on its first sample alone; one output per loss layer, named after its top, in graph order."""
    import torch
    reference = np.load(os.path.join(fixture, model, "reference.npz"))
    with open(os.path.join(fixture, model, f"{model}.json")) as f:
        graph = json.load(f)
    module = torch.jit.load(os.path.join(out, "fx_user_model", "user_model.pt"))
    names = (["dense"] if graph["layers"][0]["dense"]["dense_dim"] > 0 else []) + \
        [layer["top"] for layer in graph["layers"] if "Embedding" in layer["type"]]
    losses = [layer["top"] for layer in graph["layers"] if layer["type"].endswith("Loss")]
    worst = 0.0
    for prefix, rows in (("out", slice(None)), ("out1", slice(0, 1))):
        got = module(*[torch.from_numpy(reference[name][rows]) for name in names])
        got = [t.detach().numpy() for t in (got if isinstance(got, tuple) else (got,))]
        check(len(got) == len(losses), f"{model}: {len(got)} outputs, {len(losses)} loss layers")
        for loss, value in zip(losses, got):
            want = reference[f"{prefix}:{loss}"]
            diff = float(np.abs(value - want).max()) if value.shape == want.shape else float("inf")
            check(diff <= 1e-5, f"{model} {loss} ({prefix}): TorchScript differs from the numpy reference by {diff}")
            worst = max(worst, diff)
    with open(os.path.join(out, "fx_user_model", "output_info.json")) as f:
        nodes = [node["OutputNodeName"] for node in json.load(f)["OutputNodes"]]
    check(nodes == losses, f"{model}: output names {nodes}, the loss layers' tops are {losses}")
    return worst


def case_export(args):
    """Every model at np = N: every row of every table equals the source, the TorchScript network matches the
    numpy reference, verify passes (checksums and the network re-scoring its sample)."""
    parent = fresh(args.work, f"export_np{args.np}")
    for model in MODELS:
        out = os.path.join(parent, model)
        result = mpirun(args.binary, args.np, model_args(args.fixture, model) + ["--export-dir", out])
        expect_success(result, f"{model} np={args.np}")
        check_tables(out, args.fixture, model)
        with open(os.path.join(out, "run_record.json")) as f:
            per_rank = json.load(f)["per_rank"]
        with open(os.path.join(out, "manifest.json")) as f:
            tables = json.load(f)["tables"]
        rows_bytes = sum(t["rows"] * (8 + 4 * t["dim"] + (8 if "slot_id" in t["slots"] else 0)) for t in tables.values())
        check(len(per_rank) == args.np and all(r["bytes_in"] > 0 for r in per_rank) and
              sum(r["bytes_in"] for r in per_rank) == rows_bytes, f"{model}: per-rank bytes {per_rank} vs {rows_bytes}")
        diff = check_network(out, args.fixture, model)
        result = mpirun(args.binary, args.np, ["verify", out])
        expect_success(result, f"verify {model}")
        check("re-scored" in result.stdout, f"verify did not re-score {model}'s network: {result.stdout}")
        print(f"ok: {model} np={args.np}: every row equals the source, network within {diff:.1e} of the reference, "
              "verify passes")
    check_clean_parent(parent, list(MODELS))


def case_models(args):
    """The models of hugectr2onnx's test suite (DIN, BST, MMoE, NCF, GMF, NeuMF, DLRM with MLP), and one with the
    CrossEntropyLoss and MultiCrossEntropyLoss heads, at np 1 and 3:
    identical files, every row of every table equals the source, the network matches the numpy reference on the
    batch and on one sample, verify re-scores it."""
    parent = fresh(args.work, "models")
    deviations = {}
    for model in HUGECTR2ONNX_MODELS:
        digests = {}
        for np_ in (1, 3):
            out = os.path.join(parent, f"{model}_{np_}")
            expect_success(mpirun(args.binary, np_, model_args(args.fixture, model) + ["--export-dir", out]),
                           f"{model} np={np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[1] == digests[3], f"{model}: exports differ between np 1 and 3")
        check_tables(out, args.fixture, model)
        deviations[model] = check_network(out, args.fixture, model)
        result = mpirun(args.binary, 3, ["verify", out])
        expect_success(result, f"verify {model}")
        check("re-scored" in result.stdout, f"verify did not re-score {model}'s network: {result.stdout}")
    check_clean_parent(parent, [f"{m}_{n}" for m in HUGECTR2ONNX_MODELS for n in (1, 3)])
    print("ok: np 1 and 3 identical, rows equal the source, verify passes; largest deviation from the reference: " +
          ", ".join(f"{m} {d:.1e}" for m, d in deviations.items()))


def case_cross_n(args):
    """The export is the same whatever the number of ranks (run_record.json aside)."""
    parent = fresh(args.work, "cross_n")
    for model in MODELS:
        digests = {}
        for np_ in (1, 2, 3):
            out = os.path.join(parent, f"{model}_{np_}")
            expect_success(mpirun(args.binary, np_, model_args(args.fixture, model) + ["--export-dir", out]),
                           f"{model} np={np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[1] == digests[2] == digests[3], f"{model}: exports differ between np 1, 2 and 3")
        if model in ("dcn", "dlrm"):  # a legacy single-file table; localized ones with slot ids
            resumed = check_resume(args, parent, model)
            check(resumed == digests[1], f"{model}: the resumed export differs")
    print("ok: identical exports at np 1, 2, 3 for every model, and after --resume")


def check_resume(args, parent, model):
    """--resume of a run every rank of which stopped itself (SIGTERM) after its first range of table rows: the next
    run at the same N adopts every journaled range. The export's digest."""
    import subprocess
    from fault_test import mpirun_command
    out = os.path.join(parent, f"{model}_resume", "export")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    command = model_args(args.fixture, model) + ["--export-dir", out, "--resume"]
    stopped = subprocess.run(mpirun_command(args.binary, 3, command + ["--debug-fail-at", "range*1@*:term"]),
                             capture_output=True, text=True,
                             env=dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none"))
    check(stopped.returncode == 5, f"{model} --resume: the interrupted run: exit {stopped.returncode}\n{stopped.stderr}")
    journal = os.path.join(parent, f"{model}_resume", ".export.recis-staging.resume", ".recis-journal", "files")
    journaled = [n for n in os.listdir(journal) if n.startswith("row-table-") and ".tmp." not in n]
    expect_success(mpirun(args.binary, 3, command), f"{model} --resume: the resumed run")
    with open(os.path.join(out, "run_record.json")) as f:
        record = json.load(f)["resume"]
    check(journaled and record["adopted_row_ranges"] == len(journaled),
          f"{model} --resume: adopted {record}, journaled {journaled}")
    return tree_digest(out, skip=("run_record.json",))


def case_bad(args):
    """A dense file a float short or long, key/emb_vector counts that disagree, an unknown layer: code 3."""
    parent = fresh(args.work, "bad")
    out = os.path.join(parent, "export")
    model = "dlrm"
    shutil.copytree(os.path.join(args.fixture, model), os.path.join(parent, model))  # a private copy to damage
    args_fixture = parent  # model_args reads <fixture>/<model>/...
    dense = os.path.join(parent, model, f"{model}_dense_0.model")
    with open(dense, "rb") as f:
        original = f.read()
    for what, content, text in (("a float short", original[:-4], "4 bytes short"),
                                ("a float too long", original + b"\0\0\0\0", "4 bytes too many")):
        with open(dense, "wb") as f:
            f.write(content)
        result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
        expect_failure(result, 3, text, f"dense file {what}")
        check_clean_parent(parent, [model])
    with open(dense, "wb") as f:
        f.write(original)

    sparse = glob.glob(os.path.join(parent, model, f"{model}*_sparse_0.model"))[0]
    with open(os.path.join(sparse, "emb_vector"), "rb") as f:
        vectors = f.read()
    with open(os.path.join(sparse, "emb_vector"), "wb") as f:
        f.write(vectors[:-16])  # one row (vec 4) short of the keys
    result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
    expect_failure(result, 3, "emb_vector", "key/emb_vector count mismatch")
    check_clean_parent(parent, [model])
    with open(os.path.join(sparse, "emb_vector"), "wb") as f:
        f.write(vectors)

    ntp = dense + ".ntp.json"
    os.rename(ntp, ntp + ".away")
    result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
    expect_failure(result, 3, ntp, "BatchNorm statistics missing")
    check_clean_parent(parent, [model])
    os.rename(ntp + ".away", ntp)

    graph_path = os.path.join(parent, model, f"{model}.json")
    with open(graph_path) as f:
        graph = json.load(f)
    graph["layers"][-2]["type"] = "GRU"
    with open(graph_path, "w") as f:
        json.dump(graph, f)
    result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
    expect_failure(result, 3, 'layer type "GRU" is not supported (supported: ', "unknown layer type")
    check_clean_parent(parent, [model])

    result = mpirun(args.binary, args.np, model_args(args.fixture, "wdl", sparse=[os.path.join(args.fixture, "wdl",
                                                                                                 "wdl0_sparse_0.model")])
                    + ["--export-dir", out])
    expect_failure(result, 2, "2 embedding(s) but 1 --sparse", "too few --sparse")

    # The new layers' checks, on BST (MultiHeadAttention, LayerNorm, SequenceMask): the real binary says which layer.
    model = "bst"
    shutil.copytree(os.path.join(args.fixture, model), os.path.join(parent, model))
    dense = os.path.join(parent, model, f"{model}_dense_0.model")
    with open(dense, "rb") as f:
        original = f.read()
    with open(dense, "wb") as f:
        f.write(original[:-8])
    result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
    expect_failure(result, 3, "8 bytes short", "bst dense file two floats short")
    check_clean_parent(parent, ["dlrm", model])
    with open(dense, "wb") as f:
        f.write(original)
    graph_path = os.path.join(parent, model, f"{model}.json")
    with open(graph_path) as f:
        pristine = json.load(f)
    for what, damage, text in (
            ("a bottom no earlier layer makes",
             lambda layers: layers[-1].update(bottom="no_such_top"), '"no_such_top"'),
            ("MultiHeadAttention heads not dividing the hidden size",
             lambda layers: next(l for l in layers if l["type"] == "MultiHeadAttention").update(num_attention_heads=5),
             "(MultiHeadAttention)")):
        graph = json.loads(json.dumps(pristine))
        damage(graph["layers"])
        with open(graph_path, "w") as f:
            json.dump(graph, f)
        result = mpirun(args.binary, args.np, model_args(args_fixture, model) + ["--export-dir", out])
        expect_failure(result, 3, text, f"bst: {what}")
        check_clean_parent(parent, ["dlrm", model])
    print("ok: dense a float short / long, emb_vector short, no .ntp.json, GRU layer -> 3; missing --sparse -> 2; "
          "bst: dense short, unknown bottom, MultiHeadAttention heads -> 3 naming the layer; nothing published")


def case_hdf5(args):
    """--format hdf5: /sparse/<table>/{id, embedding, slot_id} equal the source, legacy single-file tables too
    (unpacked inside the staging directory first, and gone from the export)."""
    import h5py
    parent = fresh(args.work, "hdf5")
    for model in MODELS:
        out = os.path.join(parent, model)
        expect_success(mpirun(args.binary, args.np, model_args(args.fixture, model) + ["--export-dir", out,
                                                                                         "--format", "hdf5"]), model)
        with open(os.path.join(args.fixture, model, f"{model}.json")) as f:
            graph = json.load(f)
        embeddings = [layer for layer in graph["layers"] if "Embedding" in layer["type"]]
        sparse = sorted(glob.glob(os.path.join(args.fixture, model, f"{model}*_sparse_0.model")))
        with h5py.File(os.path.join(out, "model.h5"), "r") as h5:
            for embedding, path in zip(embeddings, sparse):
                keys, vectors, slots = source_rows(graph, path, embedding)
                group = h5["sparse"][embedding["top"]]
                check(np.array_equal(group["id"][:], keys), f"{model} {embedding['top']}: /id differs")
                check(group["embedding"][:].tobytes() == vectors.tobytes(), f"{model}: /embedding differs")
                check((slots is None) == ("slot_id" not in group), f"{model}: slot_id presence")
                if slots is not None:
                    check(np.array_equal(group["slot_id"][:], slots), f"{model}: /slot_id differs")
        check_network(out, args.fixture, model)
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {model} (hdf5)")
        check(sorted(os.listdir(out)) == ["fx_user_model", "manifest.json", "model.h5", "run_record.json"],
              f"{model}: the export holds {sorted(os.listdir(out))}")
    check_clean_parent(parent, list(MODELS))
    print("ok: HDF5 exports of dcn (legacy table), wdl, deepfm, dlrm equal the source tables")


def case_dtypes(args):
    """Every serving dtype for HugeCTR models into both formats: every table's rows equal PyTorch's conversion of
    the source vectors (serving_dtype_test.pytorch_encoding), the same bytes in the safetensors file and in
    model.h5, the manifest's error figures equal Python's; ids unchanged; --drop-slot slot_id drops the slot ids."""
    import h5py
    from serving_dtype_test import DTYPES, error_figures, pytorch_encoding
    parent = fresh(args.work, "dtypes")
    compared = 0
    jobs = (("dcn", "int4"), ("dcn", "int8"), ("wdl", "bf16"), ("deepfm", "int2"), ("dlrm", "fp16"))  # wdl: a dim 1
    for model, dtype in jobs:
        with open(os.path.join(args.fixture, model, f"{model}.json")) as f:
            graph = json.load(f)
        embeddings = [layer for layer in graph["layers"] if "Embedding" in layer["type"]]
        sparse = sorted(glob.glob(os.path.join(args.fixture, model, f"{model}*_sparse_0.model")))
        files, h5_out = os.path.join(parent, f"{model}_{dtype}"), os.path.join(parent, f"{model}_{dtype}_h5")
        # no --dense: the network does not depend on the tables' dtype, and loading libtorch 16 times is the cost
        job = model_args(args.fixture, model, dense=False) + ["--quantize-embeddings", dtype, "--drop-slot", "slot_id"]
        expect_success(mpirun(args.binary, args.np, job + ["--export-dir", files]), f"{model} {dtype}")
        expect_success(mpirun(args.binary, args.np, job + ["--export-dir", h5_out, "--format", "hdf5"]),
                       f"{model} {dtype} hdf5")
        name, stored_dtype, width = DTYPES[dtype]
        with open(os.path.join(files, "manifest.json")) as f:
            manifest = json.load(f)
        with h5py.File(os.path.join(h5_out, "model.h5"), "r") as h5:
            for i, (embedding, path) in enumerate(zip(embeddings, sparse)):
                table = embedding["top"]
                keys, vectors, _ = source_rows(graph, path, embedding)
                theirs, restored = pytorch_encoding(dtype, vectors)
                header, _, data = read_safetensors(
                    os.path.join(files, f"model-{i:06d}-of-{len(embeddings):06d}.safetensors"))
                entry = header[f"{table}.embedding/part_0_1"]
                check(entry["dtype"] == stored_dtype and entry["shape"] == [len(keys), width(vectors.shape[1])],
                      f"{table}: {entry}")
                begin, end = entry["data_offsets"]
                check(data[begin:end] == theirs.tobytes(), f"{model} {table}: safetensors rows differ from PyTorch's {dtype}")
                begin, end = header[f"{table}.id/part_0_1"]["data_offsets"]
                check(np.array_equal(np.frombuffer(data[begin:end], "<i8"), keys), f"{model} {table}: ids differ")
                check(f"{table}.slot_id/part_0_1" not in header, f"{model} {table}: slot_id was not dropped")
                group = h5["sparse"][table]
                check(group["embedding"][:].tobytes() == theirs.tobytes(), f"{model} {table}: model.h5 rows differ")
                check(group["embedding"].attrs["quantization"] == name, f"{model} {table}: attribute")
                check(np.array_equal(group["id"][:], keys), f"{model} {table}: /id differs")
                check("slot_id" not in group, f"{model} {table}: /slot_id was not dropped")
                t = manifest["tables"][table]
                check((t["dtype"], t["dim"], t.get("quantization"), t.get("source_dtype")) ==
                      (stored_dtype, vectors.shape[1], name, "F32"), f"manifest: {t}")
                check(t["quantization_error"] == error_figures(vectors, restored),
                      f"{model} {table}: error figures {t['quantization_error']}")
                compared += len(keys)
        for out in (files, h5_out):
            expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {out}")
    check_clean_parent(parent, [f"{m}_{d}{suffix}" for m, d in jobs for suffix in ("", "_h5")])
    print(f"ok: {compared} HugeCTR rows in every serving dtype, safetensors and model.h5, equal PyTorch's")


def case_rows(args):
    """--evict-l2-below and --reshard on HugeCTR tables (the key is the id): every kept row by key, kept iff its
    float32 L2 norm is not below the threshold, in the part its key's slice says, in source row order; the same
    files at np 1, 2 and 3; --evict-older-than alone is exit 3 (HugeCTR has no step_filter)."""
    from reshard_test import part_of_id
    parent = fresh(args.work, "rows")
    for model in ("dcn", "dlrm"):  # a legacy single-file table with 4-byte keys; a localized one, with slot ids
        check_rows(args, parent, model, part_of_id)
    for model in ("dcn", "dlrm"):
        check_rows_hdf5(args, parent, model, part_of_id)
    result = mpirun(args.binary, args.np, model_args(args.fixture, "wdl", dense=False) +
                    ["--export-dir", os.path.join(parent, "stale"), "--evict-older-than", "10"])
    expect_failure(result, 3, "no table has a step_filter slot", "--evict-older-than on HugeCTR")


def rows_and_norms(fixture, model):
    """Per table of a model: its source rows, each row's float32 L2 norm (summed in element order, as the tool
    does), and a threshold that evicts about half of all rows (the median norm)."""
    with open(os.path.join(fixture, model, f"{model}.json")) as f:
        graph = json.load(f)
    embeddings = [layer for layer in graph["layers"] if "Embedding" in layer["type"]]
    sparse = sorted(glob.glob(os.path.join(fixture, model, f"{model}*_sparse_0.model")))
    sources = {e["top"]: source_rows(graph, path, e) for e, path in zip(embeddings, sparse)}
    norms = {t: np.sqrt(np.add.accumulate(v * v, axis=1)[:, -1]) for t, (_, v, _) in sources.items()}
    return sources, norms, float(np.median(np.concatenate(list(norms.values()))))


def check_rows_hdf5(args, parent, model, part_of_id):
    """The same rules into model.h5: the kept rows in source order, or with --reshard the parts one after the
    other, each in source order; the parts dataset; np 1 and 3 identical."""
    import h5py
    sources, norms, threshold = rows_and_norms(args.fixture, model)
    for options, count in ((["--evict-l2-below", repr(threshold)], None),
                           (["--evict-l2-below", repr(threshold), "--reshard", "3"], 3)):
        digests = {}
        for np_ in (1, 3):
            out = os.path.join(parent, f"h5_{model}_{np_}_{'_'.join(options)}")
            expect_success(mpirun(args.binary, np_, model_args(args.fixture, model, dense=False) +
                                  ["--export-dir", out, "--format", "hdf5"] + options), f"{model} {options} np={np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[1] == digests[3], f"{model} {options}: model.h5 differs between np 1 and 3")
        with h5py.File(os.path.join(out, "model.h5"), "r") as h5:
            for table, (keys, vectors, slots) in sources.items():
                keep = ~(norms[table] < np.float32(threshold))
                order = [np.flatnonzero(keep)] if not count else \
                    [np.flatnonzero(keep & np.array([part_of_id(k, count) == m for k in keys], bool))
                     for m in range(count)]
                rows = np.concatenate(order)
                group = h5["sparse"][table]
                check(np.array_equal(group["id"][:], keys[rows]), f"{model} {options} {table}: ids")
                check(group["embedding"][:].tobytes() == vectors[rows].tobytes(), f"{model} {options} {table}: rows")
                if slots is not None:
                    check(np.array_equal(group["slot_id"][:], slots[rows]), f"{model} {options} {table}: slot ids")
                parts = group["parts"][:].tolist()
                check([p[4] for p in parts] == [len(o) for o in order], f"{model} {options} {table}: parts {parts}")
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        for table, (keys, _, _) in sources.items():
            evicted = int((norms[table] < np.float32(threshold)).sum())
            entry = manifest["tables"][table]
            check(entry.get("evicted_rows") == evicted and entry["rows"] == len(keys) - evicted and
                  entry["parts"] == (count or 1), f"{model} {options} manifest {table}: {entry}")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {model} {options}")
        print(f"ok: {model} {' '.join(options)} into model.h5: the kept rows by key, in part order, np 1 and 3 identical")


def check_rows(args, parent, model, part_of_id):
    sources, norms, threshold = rows_and_norms(args.fixture, model)
    for options, count in ((["--evict-l2-below", repr(threshold)], None),
                           (["--reshard", "3"], 3),
                           (["--evict-l2-below", repr(threshold), "--reshard", "3"], 3)):
        digests = {}
        for np_ in (1, 2, 3):
            out = os.path.join(parent, f"{model}_{len(digests)}_{'_'.join(options)}")
            expect_success(mpirun(args.binary, np_, model_args(args.fixture, model, dense=False) +
                                  ["--export-dir", out] + options), f"{model} {options} np={np_}")
            digests[np_] = tree_digest(out, skip=("run_record.json",))
        check(digests[1] == digests[2] == digests[3], f"{options}: exports differ between np 1, 2 and 3")
        with open(os.path.join(out, "tensorkey.json")) as f:
            tensorkey = json.load(f)
        names = sorted(n for n in os.listdir(out) if n.endswith(".safetensors"))
        got = {}  # table -> part -> slot -> array
        for name in names:
            header, _, data = read_safetensors(os.path.join(out, name))
            for key, entry in header.items():
                table, slot = tensorkey[key].split("^")[0].rsplit("@", 1)
                begin, end = entry["data_offsets"]
                dtype = {"I64": "<i8", "F32": "<f4", "U64": "<u8"}[entry["dtype"]]
                got.setdefault(table, {}).setdefault(key.rsplit("/", 1)[1], {})[slot] = \
                    np.frombuffer(data[begin:end], dtype).reshape(entry["shape"])
        for table, (keys, vectors, slots) in sources.items():
            keep = ~(norms[table] < np.float32(threshold)) if "--evict-l2-below" in options else np.ones(len(keys), bool)
            parts = range(count) if count else [None]
            for m in parts:
                part = f"part_{m}_{count}" if count else "part_0_1"
                want = keep & (np.array([part_of_id(k, count) == m for k in keys], bool) if count else True)
                exported = got[table][part]
                check(np.array_equal(exported["id"], keys[want]), f"{options} {table} {part}: ids")
                check(exported["embedding"].tobytes() == vectors[want].tobytes(), f"{options} {table} {part}: rows")
                if slots is not None:
                    check(np.array_equal(exported["slot_id"], slots[want]), f"{options} {table} {part}: slot ids")
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        for table, (keys, _, _) in sources.items():
            entry = manifest["tables"][table]
            if "--evict-l2-below" in options:
                evicted = int((norms[table] < np.float32(threshold)).sum())
                check(entry.get("evicted_rows") == evicted and entry["rows"] == len(keys) - evicted,
                      f"{options} manifest {table}: {entry}, {evicted} evicted")
            check(entry["parts"] == (count or 1), f"{options} manifest {table}: {entry}")
        expect_success(mpirun(args.binary, args.np, ["verify", out]), f"verify {options}")
        print(f"ok: {model} {' '.join(options)}: every kept row by key in its part, same files at np 1-3")


CASES = {"rows": case_rows, "export": case_export, "models": case_models, "cross_n": case_cross_n, "bad": case_bad, "hdf5": case_hdf5, "dtypes": case_dtypes}


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
