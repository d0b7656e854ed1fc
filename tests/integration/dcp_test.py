#!/usr/bin/python3
"""PyTorch Distributed Checkpoints against the real binary: checkpoints written by torch 2.6's own
torch.distributed.checkpoint.save (tests/integration/dcp_tools.py, in the Debian 13 root of scripts/torch2-root.sh),
in TorchEasyRec's layout, at another world size than the committed fixture's.

    dcp_test.py inspect --binary B --fixture UNUSED --work W

inspect: `recis-convert inspect` of a TorchEasyRec model directory takes its largest step (by integer) and lists
every table, with rows, dim, dtype and layout, and every dense tensor, as torch's own reading of the metadata has
them; each hostile variant of the metadata (overlapping, uncovered or outside chunks, a missing item, an item
outside the directory or stored through a transform, a call of os.system, an unknown dtype, a cut file) is exit 3
naming what is wrong, nothing it names runs, and the checkpoint is untouched.

Exits 77 (skipped) when the torch 2.x root has not been built (scripts/torch2-root.sh create; .ci/run builds it).
"""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, expect_success, run_cases  # noqa: E402
from hostile_test import tree_digest  # noqa: E402

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


CASES = {"inspect": case_inspect}

if __name__ == "__main__":
    if subprocess.run([TORCH2, "path"], stdout=subprocess.DEVNULL).returncode != 0:
        print("SKIPPED: no Debian 13 root with torch 2.6 (scripts/torch2-root.sh create)")
        sys.exit(SKIPPED)
    sys.exit(run_cases(CASES))
