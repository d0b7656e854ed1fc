#!/usr/bin/python3
"""PyTorch Distributed Checkpoints against the real binary: checkpoints written by torch 2.6's own
torch.distributed.checkpoint.save (tests/integration/dcp_tools.py, in the Debian 13 root of scripts/torch2-root.sh),
in TorchEasyRec's layout, at another world size than the committed fixture's.

    dcp_test.py inspect|export|resume|hdf5|dense|bad --binary B --fixture UNUSED --work W

inspect: `recis-convert inspect` of a TorchEasyRec model directory takes its largest step (by integer) and lists
every table, with rows, dim, dtype and layout, and every dense tensor, as torch's own reading of the metadata has
them; a large job's metadata (1,000 tables over 128 ranks: 128,000 chunks) is read; each hostile variant of the metadata (overlapping, uncovered or outside chunks, a missing item, an item
outside the directory or stored through a transform, a call of os.system, an unknown dtype, a cut file) is exit 3
naming what is wrong, nothing it names runs, and the checkpoint is untouched.

export: `--source dcp` of a TorchEasyRec model directory at np 1 and 3: every table's rows by id against torch's own
load of the checkpoint, bit for bit in their own dtype (float32, float16, bfloat16; row-wise, uneven, column-wise
and table-wise chunks); --select best takes the model.ckpt-<step> TorchEasyRec's evaluation log names; with
--reshard, --evict-l2-below and int8 embeddings, each id in the part RecIS's gen_slice says, in id order, kept iff
its L2 norm is not below the threshold, its row PyTorch's own embedding_bag_byte_prepack of the source row;
identical files at np 1 and 3; verify passes.

resume: --resume of a DCP export (plain; int8; with --reshard and --evict-l2-below) stopped by SIGTERM on every rank once
its second range of table rows is journaled: the next --resume run at the same N adopts every journaled range (a
range whose staged bytes were changed is redone, saying so), at another N none, after a touched data file none
(a fresh start naming it); the export is byte-identical to an uninterrupted one and verifies.

hdf5: the same into model.h5 (plain; and with --reshard, --evict-l2-below and int8), every row by id, the same
file at np 1 and 3; its /dense datasets are the checkpoint's dense tensors as torch loads them.

dense: --dense-model, a network scripted by torch 2.6 whose state_dict is the checkpoint's model.dense.* tensors,
filled from the DCP at np 2: torch 2.6 loads the export and scores it as the eager network with torch's own load
of the checkpoint's weights (max |diff| <= 1e-6).

bad: a cut .distcp file, a data file rewritten in place during the export, and metadata whose chunks overlap, are
exit 3 with one error line naming the file, nothing published, the checkpoint untouched (but for the rewrite); the
options a DCP export does not take are exit 2.

Exits 77 (skipped) when the torch 2.x root has not been built (scripts/torch2-root.sh create; .ci/run builds it).
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, expect_success, run_cases  # noqa: E402
from eviction_test import rows_by_id  # noqa: E402
from export_test import fresh, mpirun, tool_errors, tree_digest as files_digest  # noqa: E402
from fault_test import mpirun_command, rewrite_in_place, run_paused  # noqa: E402
from hostile_test import tree_digest  # noqa: E402
from reshard_test import part_of_id, slice_string  # noqa: E402
from serving_dtype_test import tensors_by_part  # noqa: E402

TORCH2 = os.path.join(REPO_ROOT, "scripts", "torch2-root.sh")
TOOLS = os.path.join(REPO_ROOT, "tests", "integration", "dcp_tools.py")
SKIPPED = 77
TABLE = re.compile(r"\.(embedding_bags|embeddings)\.([^.]+)\.weight$")  # torchrec's naming
PWNED = "/tmp/recis-dcp-pwned"  # what the hostile os.system would create


def torch2(work, *args):
    """dcp_tools.py with torch 2.6 in its root, `work` reachable there; its stdout."""
    env = dict(os.environ, RECIS_TORCH2_BIND=work)
    result = subprocess.run([TORCH2, "python", TOOLS] + list(args), capture_output=True, text=True, env=env)
    check(result.returncode == 0, f"dcp_tools.py {args[0]}: exit {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def layout_of(meta):
    rows, dim = meta["size"]
    stored = [(o, s) for o, s in meta["chunks"] if s[0] * s[1] > 0]
    if len(stored) <= 1:
        return "table-wise"
    count = f" ({len(meta['chunks'])} chunks)"
    if all(s[1] == dim for _, s in stored):
        return "row-wise" + count
    if all(s[0] == rows for _, s in stored):
        return "column-wise" + count
    return "grid" + count


def case_inspect(args):
    model_dir = os.path.join(args.work, "model_dir")
    shutil.rmtree(model_dir, ignore_errors=True)
    torch2(args.work, "make", model_dir, "--world", "2", "--steps", "900,1200")
    dcp_dir = os.path.join(model_dir, "model.ckpt-1200", "model")
    torch_md = json.loads(torch2(args.work, "describe", dcp_dir))

    result = subprocess.run([args.binary, "inspect", model_dir, "--json"], capture_output=True, text=True)
    expect_success(result, "inspect of a TorchEasyRec model directory")
    got = json.loads(result.stdout)
    check(got["kind"] == "DCP checkpoint", f"kind {got['kind']}")
    check(got["dir"] == dcp_dir, f"took {got['dir']}, not the largest step's {dcp_dir}")
    dtypes = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
    tables = {TABLE.search(fqn).group(2): meta for fqn, meta in torch_md.items() if TABLE.search(fqn)}
    check(sorted(got["tables"]) == sorted(tables), f"tables {sorted(got['tables'])}, torch has {sorted(tables)}")
    for name, meta in tables.items():
        t = got["tables"][name]
        check([t["rows"], t["dim"]] == meta["size"], f"{name}: {t['rows']} x {t['dim']}, torch says {meta['size']}")
        check(t["dtype"] == dtypes[meta["dtype"]], f"{name}: dtype {t['dtype']}, torch says {meta['dtype']}")
        check(t["layout"] == layout_of(meta), f"{name}: layout {t['layout']}, torch's chunks say {layout_of(meta)}")
    check(len(got["tables"]["zch_user"]["managed_collision"]) == 2, "zch_user's _mch_* buffers are not listed")
    dense = sorted(fqn for fqn in torch_md if not TABLE.search(fqn) and "_mch_" not in fqn)
    check(sorted(t["name"] for t in got["dense"]) == dense, f"dense tensors {got['dense']}, torch has {dense}")

    # a large job's metadata: 1,000 tables row-wise over 128 ranks (128,000 chunks) is read, every table listed
    large = os.path.join(args.work, "large")
    shutil.rmtree(large, ignore_errors=True)
    torch2(args.work, "large", dcp_dir, large, "--tables", "1000", "--ranks", "128")
    for r in range(128):
        open(os.path.join(large, f"__{r}_0.distcp"), "wb").close()
    result = subprocess.run([args.binary, "inspect", large, "--json"], capture_output=True, text=True)
    expect_success(result, "inspect of 128,000 chunks")
    listed = json.loads(result.stdout)["tables"]
    check(len(listed) == 1000 and all(t["layout"] == "row-wise (128 chunks)" for t in listed.values()),
          f"inspect of 128,000 chunks lists {len(listed)} tables")
    print("ok: inspect reads a .metadata of 1,000 tables over 128 ranks (128,000 chunks)")

    hostile = os.path.join(args.work, "hostile")
    shutil.rmtree(hostile, ignore_errors=True)
    torch2(args.work, "hostile", dcp_dir, hostile)
    expected = {
        "overlap": "overlaps another chunk",
        "gap": "its chunks do not cover it",
        "outside": "lies outside its shape",
        "missing_item": "has no stored item",
        "traversal": "which is not a file of the checkpoint directory",
        "transformed": "stored through a transform",
        "os_system": "global posix.system is not allowed",
        "complex_dtype": "global torch.complex64 is not allowed",
        "truncated": "pickle truncated",
    }
    check(sorted(f[:-len(".metadata")] for f in os.listdir(hostile)) == sorted(expected), "hostile variants differ")
    if os.path.exists(PWNED):
        os.remove(PWNED)
    for variant, says in expected.items():
        copy = os.path.join(args.work, "hostile-" + variant)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(dcp_dir, copy)
        shutil.copyfile(os.path.join(hostile, variant + ".metadata"), os.path.join(copy, ".metadata"))
        before = tree_digest(copy)
        result = subprocess.run([args.binary, "inspect", copy], capture_output=True, text=True)
        check(result.returncode == 3, f"{variant}: exit {result.returncode}, expected 3\n{result.stderr}")
        lines = [l for l in result.stderr.splitlines() if l.startswith("recis-convert: error:")]
        check(len(lines) == 1 and ".metadata" in lines[0] and says in lines[0],
              f"{variant}: expected one error line naming .metadata and saying {says!r}: {result.stderr}")
        check(tree_digest(copy) == before, f"{variant}: inspect changed the checkpoint")
        check(not os.path.exists(PWNED), f"{variant}: something the metadata names ran")


def make_model(work, name, rows_scale, dense_too=False):
    """A TorchEasyRec model directory (steps 900 and 1200) written by torch 2.6 with 2 processes, and torch's own
    load of its latest checkpoint: table -> its raw row-major bytes and dtype."""
    model_dir = os.path.join(work, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    torch2(work, "make", model_dir, "--world", "2", "--steps", "900,1200", "--rows-scale", str(rows_scale))
    npz = os.path.join(work, name + "-truth.npz")
    torch2(work, "truth", os.path.join(model_dir, "model.ckpt-1200", "model"), npz)
    truth, dense = {}, {}
    with np.load(npz) as arrays:
        for key in arrays.files:
            fqn, _, bits = key.partition("|")
            match = TABLE.search(fqn)
            if match and arrays[key].ndim == 2:
                dtype = {"": "F32", "f16": "F16", "bf16": "BF16"}[bits]
                truth[match.group(2)] = (arrays[key].tobytes(), dtype, arrays[key].shape)
            elif fqn.startswith("model.dense."):
                dense[fqn] = arrays[key]
    if dense_too:
        return model_dir, truth, dense
    return model_dir, truth


def as_float32(raw, dtype, dim):
    """Rows of a table's dtype as float32 [n, dim] (exactly, as the tool widens them)."""
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").reshape(-1, dim)
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(-1, dim)
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(-1, dim)


def l2_norm(row):
    """The tool's norm: the squares summed in element order in float32, then the square root."""
    total = np.float32(0)
    for x in row:
        total = np.float32(total + np.float32(x) * np.float32(x))
    return np.sqrt(total, dtype=np.float32)


def case_export(args):
    model_dir, truth = make_model(args.work, "model_dir", 20)
    check(sorted(truth) == ["cate", "item_id", "seq_item", "user_id", "zch_user"], f"torch's tables: {sorted(truth)}")
    outs = {}
    for np_ in (1, 3):
        out = os.path.join(fresh(args.work, f"plain-np{np_}"), "export")
        expect_success(mpirun(args.binary, np_, ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out]),
                       f"export at np {np_}")
        outs[np_] = out
        got = rows_by_id(out)
        check(sorted(got) == sorted(truth), f"np {np_}: tables {sorted(got)}")
        for table, (raw, dtype, shape) in truth.items():
            width = len(raw) // shape[0]
            rows = got[table]["embedding"]
            check(sorted(rows) == list(range(shape[0])), f"np {np_}: {table}: ids are not its row indices")
            check(b"".join(rows[i] for i in range(shape[0])) == raw,
                  f"np {np_}: {table}: rows differ from torch's load")
            check(all(len(rows[i]) == width for i in rows), f"np {np_}: {table}: row width")
        with open(os.path.join(out, "manifest.json")) as f:
            manifest = json.load(f)
        check(manifest["step"] == 1200, f"manifest step {manifest['step']}, the checkpoint is model.ckpt-1200")
        expect_success(mpirun(args.binary, 1, ["verify", out]), f"verify at np {np_}")
    check(files_digest(outs[1], skip=("run_record.json",)) == files_digest(outs[3], skip=("run_record.json",)),
          "plain export: the files differ between np 1 and 3")
    print(f"ok: every row of {len(truth)} tables by id equals torch's load, bit for bit, at np 1 and 3")

    # --select best: TorchEasyRec's evaluation log names step 900 the best by auc
    with open(os.path.join(model_dir, "train_eval_result_v2.txt"), "w") as f:
        f.write('{"global_step": 900, "auc": 0.81}\n{"global_step": 1200, "auc": 0.79}\n')
    out = os.path.join(fresh(args.work, "best"), "export")
    result = mpirun(args.binary, 2, ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out,
                                     "--select", "best", "--metric", "auc"])
    expect_success(result, "--select best")
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    check(manifest["step"] == 900 and manifest["source"]["ckpt_id"] == "model.ckpt-900",
          f"--select best took {manifest['source']['ckpt_id']} (step {manifest['step']}), not model.ckpt-900")
    check("selected model.ckpt-900: best auc" in result.stdout + result.stderr,
          f"--select best's reason not logged: {result.stdout}")
    print("ok: --select best takes the model.ckpt-<step> of the best auc in train_eval_result_v2.txt")

    # --publish-root: the version is the checkpoint's name, as a RecIS checkpoint's ckpt_<step>
    root = os.path.join(fresh(args.work, "root"), "serving")
    expect_success(mpirun(args.binary, 2, ["--source", "dcp", "--ckpt-dir", model_dir, "--publish-root", root]),
                   "--publish-root")
    check(os.readlink(os.path.join(root, "current")) == "model.ckpt-1200", "current is not model.ckpt-1200")
    expect_success(mpirun(args.binary, 1, ["verify", os.path.join(root, "current")]), "verify the published version")
    print("ok: --publish-root publishes model.ckpt-1200 and points current at it")

    import torch
    norms = {t: np.array([l2_norm(r) for r in as_float32(raw, dtype, shape[1])]) for t, (raw, dtype, shape) in truth.items()}
    threshold = float(np.median(norms["user_id"]))
    count = 7
    for np_ in (1, 3):
        out = os.path.join(fresh(args.work, f"rows-np{np_}"), "export")
        expect_success(mpirun(args.binary, np_, ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out,
                                                 "--reshard", str(count), "--evict-l2-below", repr(threshold),
                                                 "--quantize-embeddings", "int8"]), f"rows at np {np_}")
        outs[np_] = out
        parts = tensors_by_part(out)
        for table, (raw, dtype, shape) in truth.items():
            kept = [i for i in range(shape[0]) if not norms[table][i] < np.float32(threshold)]
            source = as_float32(raw, dtype, shape[1])
            seen = []
            for m in range(count):
                key = (table, slice_string(m, count), f"part_{m}_{count}", "id")
                if key not in parts:
                    continue
                ids = np.frombuffer(parts[key][1], dtype="<i8").tolist()
                check(ids == sorted(ids), f"{table} part {m}: ids not in order")
                check(all(part_of_id(i, count) == m for i in ids), f"{table} part {m}: an id of another part")
                packed = parts[key[:3] + ("embedding",)][1]
                width = len(packed) // max(len(ids), 1)
                for n, i in enumerate(ids):
                    theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(source[i:i + 1].copy()))
                    check(packed[n * width:(n + 1) * width] == theirs.numpy().tobytes(),
                          f"{table} id {i}: not PyTorch's int8 of torch's row")
                seen += ids
            check(sorted(seen) == kept, f"np {np_}: {table}: {len(seen)} ids exported, {len(kept)} kept by the norm")
        expect_success(mpirun(args.binary, 1, ["verify", out]), f"verify rows at np {np_}")
    check(files_digest(outs[1], skip=("run_record.json",)) == files_digest(outs[3], skip=("run_record.json",)),
          "--reshard, --evict-l2-below, int8: the files differ between np 1 and 3")
    print(f"ok: --reshard {count} --evict-l2-below {threshold:.4f} int8: each kept id in its part, PyTorch's int8, "
          "same files at np 1 and 3")


def staged_journal(parent):
    """The --resume journal's entries of the staging directory in `parent`."""
    files = os.path.join(parent, ".export.recis-staging.resume", ".recis-journal", "files")
    return sorted(n for n in os.listdir(files) if ".tmp." not in n) if os.path.isdir(files) else []


def case_resume(args):
    model_dir, truth = make_model(args.work, "model_dir", 20)
    norms = [l2_norm(r) for r in as_float32(*truth["user_id"][:2], truth["user_id"][2][1])]
    threshold = float(np.median(norms))
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    # (CI runs this under ASan too: each variant once where another covers it)
    for label, extra, variants in (("plain", [], ((3, False),)),
                                   # the manifest's int8 error sums: the adopted ranges' journaled, the rest computed
                                   ("int8", ["--quantize-embeddings", "int8"], ((3, False),)),
                                   ("reshard+evict", ["--reshard", "4", "--evict-l2-below", repr(threshold)],
                                    ((3, True), (2, False)))):
        base = ["--source", "dcp", "--ckpt-dir", model_dir] + extra
        reference_dir = os.path.join(fresh(args.work, f"reference-{label}"), "export")
        expect_success(mpirun(args.binary, 2, base + ["--export-dir", reference_dir]), f"{label}: uninterrupted")
        reference = files_digest(reference_dir, skip=("run_record.json",))
        for resume_np, corrupt in variants:
            what = f"{label}, resumed at np {resume_np}" + (", a staged byte flipped" if corrupt else "")
            parent = fresh(args.work, f"resume-{label}-{resume_np}-{corrupt}".replace("+", "-"))
            out = os.path.join(parent, "export")
            # every rank stops itself (SIGTERM, as Slurm sends) once its second range is journaled
            stopped = subprocess.run(mpirun_command(args.binary, 3, base + ["--export-dir", out, "--resume",
                                                                            "--debug-fail-at", "range*2@*:term"]),
                                     capture_output=True, text=True, env=env)
            check(stopped.returncode == 5 and "--resume: kept" in stopped.stderr,
                  f"{what}: the interrupted run: exit {stopped.returncode}\n{stopped.stderr[-2000:]}")
            check(not os.path.exists(out), f"{what}: the interrupted run published")
            journaled = staged_journal(parent)
            check(len([n for n in journaled if n.startswith("row-table-")]) >= 2, f"{what}: journaled {journaled}")
            if corrupt:  # the first data byte of every staged file: rank 0's rows of the first table, journaled
                staging = os.path.join(parent, ".export.recis-staging.resume")
                for name in os.listdir(staging):
                    if name.endswith(".safetensors"):
                        with open(os.path.join(staging, name), "r+b") as f:
                            first = 8 + int.from_bytes(f.read(8), "little")
                            f.seek(first)
                            byte = f.read(1)
                            if byte:  # a part file may hold no rows
                                f.seek(first)
                                f.write(bytes([byte[0] ^ 0xFF]))
            result = mpirun(args.binary, resume_np, base + ["--export-dir", out, "--resume"])
            expect_success(result, f"{what}: the resumed run")
            check(files_digest(out, skip=("run_record.json",)) == reference, f"{what}: the export differs")
            check(sorted(os.listdir(parent)) == ["export"], f"{what}: left {sorted(os.listdir(parent))}")
            with open(os.path.join(out, "run_record.json")) as f:
                record = json.load(f)["resume"]
            redone = result.stdout.count("are redone: the staged bytes are not the journaled ones")
            expected = 0 if resume_np != 3 else len(journaled) - redone
            check(record["adopted_row_ranges"] == expected and (redone > 0) == corrupt,
                  f"{what}: adopted {record}, {len(journaled)} journaled, {redone} redone")
            if corrupt:
                expect_success(mpirun(args.binary, 1, ["verify", out]), f"{what}: verify")
            print(f"ok: {what}: {len(journaled)} ranges journaled, {record['adopted_row_ranges']} adopted"
                  f"{f', {redone} redone' if redone else ''}, the export identical to an uninterrupted one")

    # a data file touched between the runs: a fresh start, saying which
    parent = fresh(args.work, "resume-touched")
    out = os.path.join(parent, "export")
    base = ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out, "--resume"]
    stopped = subprocess.run(mpirun_command(args.binary, 3, base + ["--debug-fail-at", "range*2@*:term"]),
                             capture_output=True, text=True, env=env)
    check(stopped.returncode == 5 and staged_journal(parent), f"touched: exit {stopped.returncode}")
    data = os.path.join(model_dir, "model.ckpt-1200", "model", "__0_0.distcp")
    stat = os.stat(data)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    result = mpirun(args.binary, 3, base)
    expect_success(result, "touched: the resumed run")
    check("a fresh start" in result.stdout and "__0_0.distcp changed" in result.stdout,
          f"touched: no fresh-start line naming the file:\n{result.stdout}")
    with open(os.path.join(out, "run_record.json")) as f:
        check(json.load(f)["resume"]["adopted_row_ranges"] == 0, "touched: a range was adopted")
    print("ok: a data file touched between the runs: a fresh start naming it")


def case_hdf5(args):
    import h5py
    import torch
    model_dir, truth, dense = make_model(args.work, "model_dir", 5, dense_too=True)
    norms = {t: np.array([l2_norm(r) for r in as_float32(raw, dtype, shape[1])]) for t, (raw, dtype, shape) in truth.items()}
    threshold = float(np.median(norms["user_id"]))
    for extra in ([], ["--reshard", "7", "--evict-l2-below", repr(threshold), "--quantize-embeddings", "int8"]):
        digests = {}
        for np_ in (1, 3):
            out = os.path.join(fresh(args.work, f"hdf5-np{np_}"), "export")
            expect_success(mpirun(args.binary, np_, ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out,
                                                     "--format", "hdf5"] + extra), f"hdf5 {extra} at np {np_}")
            digests[np_] = files_digest(out, skip=("run_record.json",))
            expect_success(mpirun(args.binary, 1, ["verify", out]), f"verify hdf5 {extra} at np {np_}")
        check(digests[1] == digests[3], f"hdf5 {extra}: model.h5 differs between np 1 and 3")
        with h5py.File(os.path.join(out, "model.h5"), "r") as f:
            check(sorted(f["sparse"]) == sorted(truth), f"hdf5 tables {sorted(f['sparse'])}")
            check(sorted(f["dense"]) == sorted(dense), f"hdf5 /dense {sorted(f['dense'])}, torch has {sorted(dense)}")
            for name, value in dense.items():
                check(f["dense"][name][()].tobytes() == value.tobytes(), f"hdf5 /dense/{name} differs from torch's")
            for table, (raw, dtype, shape) in truth.items():
                ids = [int(i) for i in f["sparse"][table]["id"][:]]
                rows = f["sparse"][table]["embedding"][:]
                if not extra:
                    check(ids == list(range(shape[0])), f"hdf5 {table}: ids are not its row indices")
                    check(rows.tobytes() == raw, f"hdf5 {table}: rows differ from torch's load")
                    continue
                kept = [i for i in range(shape[0]) if not norms[table][i] < np.float32(threshold)]
                check(sorted(ids) == kept, f"hdf5 {table}: {len(ids)} ids, {len(kept)} kept by the norm")
                check(all(part_of_id(a, 7) <= part_of_id(b, 7) for a, b in zip(ids, ids[1:])),
                      f"hdf5 {table}: ids not grouped by part")
                source = as_float32(raw, dtype, shape[1])
                for n, i in enumerate(ids):
                    theirs = torch.ops.quantized.embedding_bag_byte_prepack(torch.from_numpy(source[i:i + 1].copy()))
                    check(rows[n].tobytes() == theirs.numpy().tobytes(), f"hdf5 {table} id {i}: not PyTorch's int8")
        print(f"ok: model.h5 {' '.join(extra) or 'plain'}: every row by id, same file at np 1 and 3")


def case_dense(args):
    model_dir, _ = make_model(args.work, "model_dir", 1)
    tower = os.path.join(args.work, "tower")
    torch2(args.work, "tower", tower)
    out = os.path.join(fresh(args.work, "dense"), "export")
    result = mpirun(args.binary, 2, ["--source", "dcp", "--ckpt-dir", model_dir, "--export-dir", out,
                                     "--dense-model", os.path.join(tower, "tower.pt"), "--dense-name", "model.dense",
                                     "--sample-inputs", os.path.join(tower, "sample_inputs.safetensors"),
                                     "--outputs", "ctr"])
    expect_success(result, "--dense-model from a DCP")
    with open(os.path.join(out, "manifest.json")) as f:
        network = json.load(f)["dense_network"]
    check(network["file"] == "fx_user_model/user_model.pt", f"manifest dense_network {network}")
    expect_success(mpirun(args.binary, 1, ["verify", out]), "verify the dense export")
    dcp_dir = os.path.join(model_dir, "model.ckpt-1200", "model")
    scored = json.loads(torch2(args.work, "score", dcp_dir, os.path.join(out, "fx_user_model", "user_model.pt")))
    check(scored["max_diff"] <= 1e-6, f"torch {scored['torch']} scores the export {scored['max_diff']} away from the "
                                      "eager network with torch's load of the checkpoint's weights")
    print(f"ok: --dense-model filled from the DCP's dense tensors, scored by torch {scored['torch']}: max |diff| "
          f"{scored['max_diff']:.3g} (frozen: {network['frozen']})")


def case_bad(args):
    model_dir, _ = make_model(args.work, "model_dir", 1)
    dcp_dir = os.path.join(model_dir, "model.ckpt-1200", "model")
    hostile = os.path.join(args.work, "hostile")
    shutil.rmtree(hostile, ignore_errors=True)
    torch2(args.work, "hostile", dcp_dir, hostile)

    def refused(name, change, says, code=3, extra=()):
        copy = os.path.join(args.work, name)
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(model_dir, copy)
        where = os.path.join(copy, "model.ckpt-1200", "model")
        change(where)
        before = tree_digest(copy)
        out = os.path.join(fresh(args.work, name + "-out"), "export")
        result = mpirun(args.binary, 3, ["--source", "dcp", "--ckpt-dir", copy, "--export-dir", out] + list(extra))
        check(result.returncode == code, f"{name}: exit {result.returncode}, expected {code}\n{result.stderr}")
        lines = tool_errors(result.stderr)
        check(len(lines) >= 1 and all(l == lines[0] for l in lines) and says in lines[0],
              f"{name}: expected one error line saying {says!r}: {result.stderr}")
        check(not os.path.exists(out), f"{name}: something was published")
        check(tree_digest(copy) == before, f"{name}: the checkpoint changed")
        print(f"ok: {name}: exit {code}: {lines[0]}")

    def cut(where):
        path = os.path.join(where, "__1_0.distcp")
        os.truncate(path, os.path.getsize(path) // 2)

    refused("cut", cut, "__1_0.distcp")
    refused("overlap", lambda where: shutil.copyfile(os.path.join(hostile, "overlap.metadata"),
                                                       os.path.join(where, ".metadata")), "overlaps another chunk")
    refused("unfinished", lambda where: os.remove(os.path.join(where, ".metadata")), "not a finished")
    # a data file rewritten in place while the export reads (rank 0 paused after its first rows): exit 3 naming it
    rewritten = os.path.join(args.work, "rewritten")
    shutil.rmtree(rewritten, ignore_errors=True)
    shutil.copytree(model_dir, rewritten)
    out = os.path.join(fresh(args.work, "rewritten-out"), "export")
    where = os.path.join(rewritten, "model.ckpt-1200", "model")

    def rewrite_data_files():
        for name in sorted(os.listdir(where)):
            if name.endswith(".distcp"):
                rewrite_in_place(os.path.join(where, name))

    code, stderr = run_paused(mpirun_command(args.binary, 2, ["--source", "dcp", "--ckpt-dir", rewritten,
                                                              "--export-dir", out, "--debug-fail-at", "stream@0:pause"]),
                              "stream", os.path.join(args.work, "rewritten.stderr"), rewrite_data_files)
    errors = tool_errors(stderr)
    check(code == 3 and len(errors) == 1 and ".distcp" in errors[0], f"rewritten: exit {code}, errors {errors}")
    check(not os.path.exists(out), "rewritten: something was published")
    print(f"ok: a data file rewritten during the export: exit 3: {errors[0]}")

    for extra, says in ((["--delta-since", "900"], "--delta-since"), (["--resume", "--format", "hdf5"], "hdf5"),
                        (["--evict-older-than", "10"], "step_filter")):
        refused("option" + extra[0], lambda where: None, says, 2 if "step_filter" not in says else 3, extra)


CASES = {"inspect": case_inspect, "export": case_export, "resume": case_resume, "hdf5": case_hdf5, "dense": case_dense,
         "bad": case_bad}

if __name__ == "__main__":
    if subprocess.run([TORCH2, "path"], stdout=subprocess.DEVNULL).returncode != 0:
        print("SKIPPED: no Debian 13 root with torch 2.6 (scripts/torch2-root.sh create)")
        sys.exit(SKIPPED)
    sys.exit(run_cases(CASES))
