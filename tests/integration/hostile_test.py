#!/usr/bin/python3
"""Hostile inputs (issue 33): files and command lines crafted as an attacker would, each of which once crashed the
converter, hung it, published an export that was wrong but verified, or wrote into an input. Every case must end
with its documented exit code, exactly one error line naming what is wrong, nothing published, no staging
directory left, and every input byte for byte as before; never a signal, exit 1 or a hang.

    hostile_test.py CLASS --binary BIN --fixture OUTPUT_DIR --work DIR [--np N]

A case is a few lines: a name, a function that makes the hostile input in a fresh directory and returns the
command, the exit code and a text the error line must contain (HOSTILE below, one list per class of the issue).
The rewritten-while-read class lives in fault_test.py (source_changes), which pauses a rank to change the world.
"""
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, CheckFailed, check, check_clean_parent, latest_checkpoint,  # noqa: E402
                         tool_errors)

HANG_SECONDS = 120  # far beyond any case's run time: a case still running then is a hang


def tree_digest(directory):
    """{relative path: sha256} of every regular file under directory, and the type of anything else (a FIFO is
    never opened: that would block this test as it blocked the converter)."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                with open(path, "rb") as f:
                    out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
            else:
                out[os.path.relpath(path, directory)] = stat.S_IFMT(mode)
    return out


def run(binary, np_, args):
    """The binary under mpirun (np_ > 0) or alone (inspect); a hang is a failure, not a stuck test."""
    command = [binary] + args
    if np_ > 0:
        command = ["mpirun", "--oversubscribe", "-np", str(np_)] + (["--allow-run-as-root"] if os.geteuid() == 0 else []) + command
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=HANG_SECONDS,
                              errors="replace")
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{' '.join(args)}: still running after {HANG_SECONDS} s (a hang)")


def copy_checkpoint(fixture, parent):
    ckpt = os.path.join(parent, "ckpt_1")
    shutil.copytree(latest_checkpoint(fixture), ckpt)
    return ckpt


def pickle_archive(path, pickle_bytes):
    """A torch.save-like zip holding only archive/data.pkl: what the weights-only reader opens first."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/version", "3\n")


DEPTH = 200_000  # {"x": [[[...]]]}: freeing it recursively overflowed the stack (SIGSEGV)
DEEP_PICKLE = b"\x80\x02}(X\x01\x00\x00\x00x" + b"]" * DEPTH + b"a" * (DEPTH - 1) + b"u."


# --- the cases: each makes its input under `parent` and returns (args, np or 0 for a plain process, exit, text) ---

def deep_model_pt(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    pickle_archive(os.path.join(ckpt, "model.pt"), DEEP_PICKLE)
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export"), "--format", "hdf5"], np_, 3, \
        'entry "x" is a list, not a tensor'


def deep_model_pt_inspect(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    pickle_archive(os.path.join(ckpt, "model.pt"), DEEP_PICKLE)
    return ["inspect", ckpt], 0, 3, 'entry "x" is a list, not a tensor'


def fifo_option(option):
    def case(ctx, parent, np_):
        fifo = os.path.join(parent, "fifo")
        os.mkfifo(fifo)
        return ["--ckpt-dir", ctx.fixture, "--export-dir", os.path.join(parent, "export"), option, fifo], np_, 2, \
            "is a FIFO, not a regular file"
    return case


def fifo_model_pt(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    os.unlink(os.path.join(ckpt, "model.pt"))
    os.mkfifo(os.path.join(ckpt, "model.pt"))
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export"), "--format", "hdf5"], np_, 3, \
        "model.pt: is a FIFO, not a regular file"


def fifo_versions_json(ctx, parent, np_):
    root = os.path.join(parent, "root")
    os.makedirs(root)
    os.mkfifo(os.path.join(root, "versions.json"))
    return ["--ckpt-dir", ctx.fixture, "--publish-root", root], np_, 4, "versions.json: is a FIFO, not a regular file"


def fifo_under_verify(ctx, parent, np_):
    export = os.path.join(parent, "made")
    made = run(ctx.binary, np_, ["--ckpt-dir", ctx.fixture, "--export-dir", export])
    check(made.returncode == 0, f"the export to verify failed: {made.stderr}")
    victim = sorted(n for n in os.listdir(export) if n.endswith(".safetensors"))[0]
    os.unlink(os.path.join(export, victim))
    os.mkfifo(os.path.join(export, victim))
    return ["verify", export], np_, 3, f"{victim}: is a FIFO, not a regular file"


def not_utf8_ckpt_dir(ctx, parent, np_):
    ckpt = os.path.join(os.fsencode(parent), b"ckpt_\xff")
    shutil.copytree(os.fsencode(latest_checkpoint(ctx.fixture)), ckpt)
    return [os.fsdecode(b"--ckpt-dir"), os.fsdecode(ckpt), "--export-dir", os.path.join(parent, "export")], np_, 2, \
        "is not valid UTF-8"


def not_utf8_table_name(ctx, parent, np_):
    return ["--ckpt-dir", ctx.fixture, "--export-dir", os.path.join(parent, "export"),
            "--quantize-table", os.fsdecode(b"us\xffer=fp16")], np_, 2, "is not valid UTF-8"


def report_inside_checkpoint(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    victim = sorted(n for n in os.listdir(ckpt) if n.endswith(".safetensors"))[0]
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export"),
            "--report", os.path.join(ckpt, victim)], np_, 2, "is inside the checkpoint directory --ckpt-dir"


def export_inside_checkpoint(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(ckpt, "export")], np_, 4, \
        "is inside the source checkpoint"


def export_through_symlinked_parent(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    os.symlink(ckpt, os.path.join(parent, "link"))
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "link", "export")], np_, 4, \
        "is inside the source checkpoint"


def delta_over_its_base(ctx, parent, np_):
    base = os.path.join(parent, "base")
    made = run(ctx.binary, np_, ["--ckpt-dir", checkpoints_of(ctx.fixture)[0], "--export-dir", base])
    check(made.returncode == 0, f"the base export failed: {made.stderr}")
    return ["--ckpt-dir", ctx.fixture, "--delta-since", base, "--export-dir", base, "--overwrite"], np_, 4, \
        "contains the delta's base export"


def checkpoints_of(output_dir):
    return [os.path.join(output_dir, d) for d in
            sorted((d for d in os.listdir(output_dir) if d.startswith("ckpt_")), key=lambda d: int(d[5:]))]


def base_and_delta(ctx, parent, np_, delta_source=None):
    """A full export of the first checkpoint and a delta of the latest since it: a merge's inputs."""
    base, delta = os.path.join(parent, "base"), os.path.join(parent, "delta")
    first = checkpoints_of(ctx.fixture)[0]
    for args in (["--ckpt-dir", first, "--export-dir", base],
                 ["--ckpt-dir", delta_source or ctx.fixture, "--delta-since", base, "--export-dir", delta]):
        made = run(ctx.binary, np_, args)
        check(made.returncode == 0, f"making the merge's inputs failed: {made.stderr}")
    return base, delta


def merge_flipped_byte(ctx, parent, np_):
    base, delta = base_and_delta(ctx, parent, np_)
    victim = os.path.join(base, sorted(n for n in os.listdir(base) if n.endswith(".safetensors"))[-1])
    with open(victim, "r+b") as f:  # same size, one bit of a row: only the checksum tells
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0x01]))
    return ["merge", base, delta, "--export-dir", os.path.join(parent, "merged")], np_, 3, \
        f"{os.path.basename(victim)}: checksum"


def flip_bit(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def data_files_holding(export, slot):
    """The export's data files with a tensor of `slot` ("id", "embedding"), by name."""
    out = []
    for name in sorted(n for n in os.listdir(export) if n.endswith(".safetensors")):
        with open(os.path.join(export, name), "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        if any(k.split("/")[0].endswith("." + slot) for k in header if k != "__metadata__"):
            out.append(name)
    return out


def merge_flipped_id_byte(ctx, parent, np_):
    """A bit of an id in the middle of a file of ids, which the joins read before the stream does: the merge hashes
    its inputs from the stream's reads (issue 37), and still says which file differs from its manifest."""
    base, delta = base_and_delta(ctx, parent, np_)
    victim = os.path.join(base, data_files_holding(base, "id")[0])
    size = os.path.getsize(victim)
    flip_bit(victim, size - (size - 8) // 2)
    return ["merge", base, delta, "--export-dir", os.path.join(parent, "merged")], np_, 3, \
        f"{os.path.basename(victim)}: checksum"


def merge_broken_header(ctx, parent, np_):
    """The '{' of an embedding file's header flipped: the stream cannot read the file, and the error says that it is
    not what its manifest says, not how it fails to parse."""
    base, delta = base_and_delta(ctx, parent, np_)
    victim = os.path.join(base, data_files_holding(base, "embedding")[0])
    flip_bit(victim, 8)
    return ["merge", base, delta, "--export-dir", os.path.join(parent, "merged")], np_, 3, \
        f"{os.path.basename(victim)}: checksum"


def merge_other_run(ctx, parent, np_):
    other = os.path.join(parent, "other-run")  # the same checkpoints, as another training run's output
    shutil.copytree(ctx.fixture, other)
    base, delta = base_and_delta(ctx, parent, np_, delta_source=other)
    return ["merge", base, delta, "--export-dir", os.path.join(parent, "merged")], np_, 3, \
        "a delta applies only to exports of its own run"


def merge_into_base(ctx, parent, np_):
    base, delta = base_and_delta(ctx, parent, np_)
    return ["merge", base, delta, "--export-dir", os.path.join(base, "merged")], np_, 4, \
        "is inside the base export"


def lying_tensorkey(mutate, text):
    def case(ctx, parent, np_):
        ckpt = copy_checkpoint(ctx.fixture, parent)
        path = os.path.join(ckpt, "tensorkey.json")
        with open(path) as f:
            tensorkey = json.load(f)
        mutate(tensorkey)
        with open(path, "w") as f:
            json.dump(tensorkey, f, indent=4, sort_keys=True)
        return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export")], np_, 3, text
    return case


def first_part(tensorkey, slot):
    """The first key of a table's slot that has two parts or more, and its value."""
    for key in sorted(tensorkey):
        child, rest = tensorkey[key].split("@", 1)
        if rest.startswith(slot + "^") and not tensorkey[key].endswith("@65536@65536"):
            return key, tensorkey[key]
    raise CheckFailed(f"the fixture has no table whose {slot} slot has two parts")


def widen_first_slice(tensorkey):  # part 0 reaches into part 1
    key, value = first_part(tensorkey, "id")
    head, slice_ = value.split("^")
    begin, end, size = slice_.split("@")
    tensorkey[key] = f"{head}^{begin}@{int(end) + 1:0{len(size)}d}@{size}"


def narrow_first_slice(tensorkey):  # a gap between part 0 and part 1
    key, value = first_part(tensorkey, "id")
    head, slice_ = value.split("^")
    begin, end, size = slice_.split("@")
    tensorkey[key] = f"{head}^{begin}@{int(end) - 1:0{len(size)}d}@{size}"


def embedding_names_step_filter(tensorkey):
    key, value = first_part(tensorkey, "embedding")
    tensorkey[key] = value.replace("@embedding^", "@step_filter^")


def unindexed_entry(tensorkey):
    key, value = first_part(tensorkey, "id")
    tensorkey[key.replace("/part_", "_ghost/part_")] = value.replace("@id^", "@id_ghost^")


def index_names_manifest_json(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    victim = sorted(n for n in os.listdir(ckpt) if n.endswith(".safetensors"))[0]
    os.rename(os.path.join(ckpt, victim), os.path.join(ckpt, "manifest.json"))
    with open(os.path.join(ckpt, "index")) as f:
        index = json.load(f)
    index["file_index"]["manifest.json"] = index["file_index"].pop(victim)
    with open(os.path.join(ckpt, "index"), "w") as f:
        json.dump(index, f)
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export")], np_, 3, \
        "which is not a .safetensors data file"


def dense_tensor_of_33_dims(ctx, parent, np_):
    ckpt = copy_checkpoint(ctx.fixture, parent)
    subprocess.run([sys.executable, "-c", "import sys, torch; torch.save({'w': torch.zeros([1] * 33)}, sys.argv[1])",
                    os.path.join(ckpt, "model.pt")], check=True)
    return ["--ckpt-dir", ckpt, "--export-dir", os.path.join(parent, "export"), "--format", "hdf5"], np_, 3, \
        "cannot be an HDF5 dataset"


def export_name_without_room(ctx, parent, np_):
    return ["--ckpt-dir", ctx.fixture, "--export-dir", os.path.join(parent, "x" * 240)], np_, 2, \
        "staging it beside the export needs"


def empty_value(option):
    def case(ctx, parent, np_):
        return ["--ckpt-dir", ctx.fixture, "--export-dir", os.path.join(parent, "export"), option, ""], np_, 2, \
            "an empty value is not allowed"
    return case


def empty_value_in_config(ctx, parent, np_):
    config = os.path.join(parent, "job.json")
    with open(config, "w") as f:
        json.dump({"ckpt-dir": ctx.fixture, "export-dir": os.path.join(parent, "export"), "delta-since": ""}, f)
    return ["--config", config], np_, 2, "an empty value is not allowed"


HOSTILE = {
    "crash": [("deep_model_pt_hdf5", deep_model_pt), ("deep_model_pt_inspect", deep_model_pt_inspect)],
    "fifo": [("fifo_fg", fifo_option("--fg")), ("fifo_config", fifo_option("--config")),
             ("fifo_asset", fifo_option("--asset-files")), ("fifo_dense_model", fifo_option("--dense-model")),
             ("fifo_model_pt", fifo_model_pt), ("fifo_versions_json", fifo_versions_json),
             ("fifo_under_verify", fifo_under_verify)],
    "utf8": [("ckpt_dir", not_utf8_ckpt_dir), ("table_name", not_utf8_table_name)],
    "inside_inputs": [("report_in_checkpoint", report_inside_checkpoint),
                      ("export_in_checkpoint", export_inside_checkpoint),
                      ("export_through_symlink", export_through_symlinked_parent),
                      ("delta_over_base", delta_over_its_base)],
    "tensorkey": [("overlap", lying_tensorkey(widen_first_slice, "overlap at id % 65536")),
                  ("gap", lying_tensorkey(narrow_first_slice, "no slice covers ids % 65536")),
                  ("slot_lie", lying_tensorkey(embedding_names_step_filter, "is not that slot's part key")),
                  ("no_block", lying_tensorkey(unindexed_entry, "has no block in index"))],
    "exit_class": [("index_names_manifest_json", index_names_manifest_json),
                   ("dense_33_dims_hdf5", dense_tensor_of_33_dims), ("long_export_name", export_name_without_room)],
    "merge": [("flipped_byte", merge_flipped_byte), ("flipped_id_byte", merge_flipped_id_byte),
              ("broken_header", merge_broken_header), ("other_run", merge_other_run), ("into_base", merge_into_base)],
    "empty": [("delta_since", empty_value("--delta-since")), ("report", empty_value("--report")),
              ("version_name", empty_value("--version-name")), ("config_key", empty_value_in_config)],
}


def run_class(name):
    def case(args):
        for case_name, make in HOSTILE[name]:
            for np_ in sorted({1, args.np}):
                parent = os.path.join(args.work, f"{case_name}_np{np_}")
                shutil.rmtree(parent, ignore_errors=True)
                os.makedirs(parent)
                fixture_before = tree_digest(args.fixture)
                command, ranks, code, text = make(args, parent, np_)
                made = sorted(os.listdir(parent))  # the inputs the case made, before the run
                before = {entry: tree_digest(os.path.join(parent, entry)) for entry in made
                          if os.path.isdir(os.path.join(parent, entry))}
                result = run(args.binary, ranks, command)
                what = f"{name}/{case_name} np {np_}"
                check(result.returncode == code, f"{what}: exit {result.returncode}, expected {code}\n{result.stderr}")
                errors = tool_errors(result.stderr)
                if command[0] == "verify":  # verify lists every problem, then a summary line
                    errors = [e for e in errors if text in e]
                check(len(errors) == 1 and text in errors[0], f"{what}: expected one error line saying {text!r}: "
                                                              f"{errors}\n{result.stderr}")
                check_clean_parent(parent, made)  # nothing published, no staging directory left
                for entry, digest in before.items():
                    check(tree_digest(os.path.join(parent, entry)) == digest, f"{what}: {entry} was modified")
                check(tree_digest(args.fixture) == fixture_before, f"{what}: the fixture was modified")
                print(f"ok: {what}: {errors[0]}")
    return case


CASES = {name: run_class(name) for name in HOSTILE}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
