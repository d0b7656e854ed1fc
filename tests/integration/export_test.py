#!/usr/bin/python3
"""Integration tests: run the real recis-convert binary under mpirun on fixtures from scripts/make_fixture.py and
check every byte that matters with an independent Python reader.

    export_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases: copy, filter, filter_adam, cross_n, bad_inputs, cli. Exit 0 when every check holds, 1 otherwise.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys

import xxhash

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT_DATA_SUFFIX = ".safetensors"
OPTIMIZER_PREFIX = "sparse_"


class CheckFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


# --- an independent reader of RecIS safetensors files -----------------------------------------------------------

def read_safetensors(path):
    """Returns (header dict in file order, raw header bytes, data bytes)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    raw = blob[8:8 + n]
    header = json.loads(raw.decode("utf-8"), object_pairs_hook=lambda pairs: dict(pairs))
    return header, raw, blob[8 + n:]


def tensor_bytes(header, data, key):
    begin, end = header[key]["data_offsets"]
    return data[begin:end]


def slot_of(key):
    """'child.slot/part_r_R' -> slot; dense 'name^ ' -> None."""
    if key.endswith("^ "):
        return None
    return key.rsplit("/part_", 1)[0].rsplit(".", 1)[1]


def is_optimizer_key(key):
    return key[:-2].startswith(OPTIMIZER_PREFIX) if key.endswith("^ ") else slot_of(key).startswith(OPTIMIZER_PREFIX)


def latest_checkpoint(fixture):
    with open(os.path.join(fixture, "checkpoint")) as f:
        lines = [line.strip() for line in f if line.strip()]
    return os.path.join(fixture, lines[-1])


def data_files(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(EXPORT_DATA_SUFFIX))


def piece_checksum(blob, piece_bytes):
    """A file's checksum as manifest.json lists it (checksum.h), with its key: XXH3-64 for a file of one piece of
    piece_bytes, else the XXH3-64 of its pieces' XXH3-64s, each 8 little-endian bytes."""
    if piece_bytes == 0 or len(blob) <= piece_bytes:
        return "xxh3_64", xxhash.xxh3_64_hexdigest(blob)
    digests = b"".join(struct.pack("<Q", xxhash.xxh3_64_intdigest(blob[at:at + piece_bytes]))
                       for at in range(0, len(blob), piece_bytes))
    return "xxh3_64_pieces", xxhash.xxh3_64_hexdigest(digests)


def tree_digest(directory, skip=()):
    """{relative path: sha256} of every file under directory."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if rel in skip:
                continue
            with open(path, "rb") as f:
                out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


# --- running the binary --------------------------------------------------------------------------------------

def mpirun(binary, np, args, cwd=None):
    command = ["mpirun", "--oversubscribe", "-np", str(np)]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
    result = subprocess.run(command + [binary] + args, capture_output=True, text=True, env=env, timeout=600, cwd=cwd)
    return result


def tool_errors(stderr):
    """The tool's own error lines (mpirun adds its banners around them)."""
    return [line for line in stderr.splitlines() if line.startswith("recis-convert: error:")]


def expect_success(result, what):
    check(result.returncode == 0, f"{what}: exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    check(not tool_errors(result.stderr), f"{what}: error lines on success: {result.stderr}")


# --- checks of an export against its source ------------------------------------------------------------------

def check_metadata(export_dir, source_dir):
    """index, tensorkey.json and the torch_rank json agree with the exported files (and RecIS formatting)."""
    files = data_files(export_dir)
    headers = {name: read_safetensors(os.path.join(export_dir, name))[0] for name in files}
    with open(os.path.join(source_dir, "tensorkey.json"), encoding="utf-8") as f:
        source_tensorkey = json.load(f)

    with open(os.path.join(export_dir, "index"), "rb") as f:
        index_text = f.read().decode("utf-8")
    index = json.loads(index_text)
    check(index_text == json.dumps(index, separators=(",", ":"), ensure_ascii=False, sort_keys=True),
          "index is not compact, sorted JSON without newline")
    check(index["file_index"] == {name: i for i, name in enumerate(files)}, "file_index does not number the files")
    expected_blocks = {key: index["file_index"][name] for name, h in headers.items() for key in h}
    check(index["block_index"] == expected_blocks, "block_index does not match the file headers")

    with open(os.path.join(export_dir, "tensorkey.json"), "rb") as f:
        tensorkey_text = f.read().decode("utf-8")
    tensorkey = json.loads(tensorkey_text)
    sparse_keys = {k for h in headers.values() for k in h if not k.endswith("^ ")}
    check(tensorkey == {k: source_tensorkey[k] for k in sparse_keys}, "tensorkey.json does not list exactly the exported sparse keys")
    check(tensorkey_text == json.dumps(tensorkey, indent=4, ensure_ascii=False, sort_keys=True),
          "tensorkey.json is not 4-space indented sorted JSON without newline")

    with open(os.path.join(export_dir, "torch_rank_weights_embs_table_multi_shard.json"), encoding="utf-8") as f:
        torch_rank = json.load(f)
    torch_names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64"}
    expected = {}
    for h in headers.values():
        for key, entry in h.items():
            if key.endswith("^ "):
                expected[key] = {"dense": True, "dimension": 0, "dtype": torch_names[entry["dtype"]],
                                 "is_hashmap": False, "name": key, "shape": entry["shape"]}
            elif ".embedding" in key:
                expected[key] = {"dense": False, "dimension": entry["shape"][-1], "dtype": torch_names[entry["dtype"]],
                                 "hashmap_key": key.replace(".embedding", ".id", 1), "hashmap_key_dtype": "int64",
                                 "hashmap_value": key, "is_hashmap": True, "name": key, "shape": entry["shape"]}
    check(torch_rank == expected, "torch_rank json does not describe exactly the exported embeddings and dense tensors")
    for entry in torch_rank.values():
        if entry["is_hashmap"]:
            check(entry["hashmap_key"] in expected_blocks, f"hashmap_key {entry['hashmap_key']} is not exported")

    with open(os.path.join(export_dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    listed = {entry["name"]: entry for entry in manifest["data_files"]}
    check(sorted(listed) == files, "manifest does not list exactly the exported data files")
    for name in files:
        with open(os.path.join(export_dir, name), "rb") as f:
            blob = f.read()
        check(listed[name]["bytes"] == len(blob), f"manifest size of {name} is wrong")
        key, digest = piece_checksum(blob, manifest["checksum_piece_bytes"])
        check(listed[name].get(key) == digest, f"manifest checksum of {name} is wrong (expected {key} {digest})")
    for entry in manifest["metadata_files"]:
        with open(os.path.join(export_dir, entry["name"]), "rb") as f:
            blob = f.read()
        check(entry["xxh3_64"] == xxhash.xxh3_64_hexdigest(blob), f"manifest checksum of {entry['name']} is wrong")
    # tables: rows, dim, dtype from the exported headers
    rows = {}
    for h in headers.values():
        for key, entry in h.items():
            if not key.endswith("^ ") and slot_of(key) == "id":
                child = key.rsplit("/part_", 1)[0].rsplit(".", 1)[0]
                rows[child] = rows.get(child, 0) + entry["shape"][0]
    check({c: t["rows"] for c, t in manifest["tables"].items()} == rows, "manifest table rows are wrong")
    check(manifest["source"]["checkpoint"] == os.path.realpath(source_dir), "manifest names the wrong checkpoint")
    return headers, manifest


def check_copy_export(export_dir, source_dir):
    check(data_files(export_dir) == data_files(source_dir), "copy mode must export every data file")
    for name in data_files(source_dir):
        with open(os.path.join(export_dir, name), "rb") as a, open(os.path.join(source_dir, name), "rb") as b:
            check(a.read() == b.read(), f"{name} is not byte-identical to the source")
    check_metadata(export_dir, source_dir)


def check_filter_export(export_dir, source_dir):
    source = {name: read_safetensors(os.path.join(source_dir, name)) for name in data_files(source_dir)}
    exported = {name: read_safetensors(os.path.join(export_dir, name)) for name in data_files(export_dir)}
    kept_sources = set()
    for name, (header, raw, data) in source.items():
        keep = [k for k in header if not is_optimizer_key(k)]
        if not keep:
            check(name not in exported, f"{name} has only optimizer tensors but was exported")
            continue
        check(name in exported, f"{name} has model tensors but was not exported")
        out_header, out_raw, out_data = exported[name]
        check(list(out_header) == keep, f"{name}: exported keys {list(out_header)} != kept source keys {keep}")
        for key in keep:
            check(out_header[key]["dtype"] == header[key]["dtype"] and out_header[key]["shape"] == header[key]["shape"],
                  f"{name}: {key} dtype/shape changed")
            check(tensor_bytes(out_header, out_data, key) == tensor_bytes(header, data, key),
                  f"{name}: {key} bytes differ from the source")
            kept_sources.add(key)
        # RecIS header style: compact JSON in key order, then 1..8 spaces, data back to back
        stripped = out_raw.rstrip(b" ")
        pad = len(out_raw) - len(stripped)
        check(1 <= pad <= 8 and len(out_raw) % 8 == 0, f"{name}: header padding {pad} is not RecIS style")
        check(stripped == json.dumps(out_header, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
              f"{name}: header is not compact JSON")
        check(len(out_data) == sum(len(tensor_bytes(header, data, k)) for k in keep), f"{name}: extra data bytes")
    all_model = {k for h, _, _ in source.values() for k in h if not is_optimizer_key(k)}
    check(kept_sources == all_model, "some id/embedding/step_filter tensors were not exported")
    check(any(slot_of(k) == "step_filter" for k in all_model), "fixture has no step_filter to check")
    check(all(not is_optimizer_key(k) for h, _, _ in exported.values() for k in h), "an optimizer tensor was exported")
    headers, manifest = check_metadata(export_dir, source_dir)
    dropped = manifest["totals"]["dropped_by_slot"]
    check(any(s.startswith(OPTIMIZER_PREFIX) for s in dropped), "manifest reports no dropped optimizer slot")


def check_clean_parent(parent, expected_entries):
    entries = sorted(os.listdir(parent))
    check(entries == sorted(expected_entries), f"{parent} holds {entries}, expected {sorted(expected_entries)}")


# --- cases ------------------------------------------------------------------------------------------------------

def fresh(work, name):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def case_copy(args):
    source = latest_checkpoint(args.fixture)
    before = tree_digest(args.fixture)
    parent = fresh(args.work, f"copy_np{args.np}")
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out])
    expect_success(result, "copy export")
    check_copy_export(out, source)
    check_clean_parent(parent, ["export"])
    check(tree_digest(args.fixture) == before, "the source checkpoint was modified")
    check("published" in result.stdout, "no final summary line")


def case_filter(args):
    source = latest_checkpoint(args.fixture)
    before = tree_digest(args.fixture)
    parent = fresh(args.work, f"filter_{os.path.basename(args.fixture)}_np{args.np}")
    out = os.path.join(parent, "export")
    extra = ["--balance", "size"] if args.np == 3 else []
    result = mpirun(args.binary, args.np, ["--ckpt-dir", source, "--export-dir", out, "--filter-optimizer"] + extra)
    expect_success(result, "filter export")
    check_filter_export(out, source)
    check_clean_parent(parent, ["export"])
    check(tree_digest(args.fixture) == before, "the source checkpoint was modified")


def case_cross_n(args):
    """The export's files are identical whatever N is; only run_record.json may differ."""
    for mode in (["--filter-optimizer"], []):
        digests = {}
        for np in (1, 2, 3, 4):
            parent = fresh(args.work, f"cross_n_{np}")
            out = os.path.join(parent, "export")
            balance = ["--balance", "size"] if np == 4 else []
            expect_success(mpirun(args.binary, np, ["--ckpt-dir", args.fixture, "--export-dir", out] + mode + balance),
                           f"np={np} {mode}")
            digests[np] = tree_digest(out, skip=("run_record.json",))
        for np in (2, 3, 4):
            differing = sorted(k for k in set(digests[1]) | set(digests[np]) if digests[1].get(k) != digests[np].get(k))
            check(not differing, f"{mode}: np=1 and np={np} exports differ in {differing}")


def corrupt_copy(fixture, work, name, damage):
    """A copy of the latest checkpoint with `damage(ckpt_dir)` applied."""
    parent = fresh(work, f"bad_{name}")
    ckpt = os.path.join(parent, "ckpt_1")
    shutil.copytree(latest_checkpoint(fixture), ckpt)
    damage(ckpt)
    return ckpt


def first_file_with(ckpt, predicate):
    for name in data_files(ckpt):
        header, raw, data = read_safetensors(os.path.join(ckpt, name))
        if predicate(header):
            return os.path.join(ckpt, name)
    raise CheckFailed("fixture has no suitable file")


def rewrite_header(path, mutate):
    header, raw, data = read_safetensors(path)
    mutate(header)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (8 - len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def two_tensor_file(ckpt):
    return first_file_with(ckpt, lambda h: len(h) >= 2)


def damage_truncate(ckpt):
    path = two_tensor_file(ckpt)
    os.truncate(path, os.path.getsize(path) - 3)


def damage_truncate_second_file(ckpt):
    """The second file belongs to rank 1 under round-robin: a failure away from rank 0."""
    path = os.path.join(ckpt, data_files(ckpt)[1])
    os.truncate(path, os.path.getsize(path) - 1)


def damage_length_past_end(ckpt):
    path = two_tensor_file(ckpt)
    with open(path, "r+b") as f:
        f.write(struct.pack("<Q", os.path.getsize(path) + 100))


def damage_overlap(ckpt):
    def mutate(header):
        keys = list(header)
        header[keys[1]]["data_offsets"] = list(header[keys[0]]["data_offsets"])
    rewrite_header(two_tensor_file(ckpt), mutate)


def damage_shape(ckpt):
    def mutate(header):
        key = next(k for k in header if header[k]["shape"] and header[k]["shape"][0] > 0)
        header[key]["shape"][0] += 1
    rewrite_header(first_file_with(ckpt, lambda h: any(e["shape"] and e["shape"][0] > 0 for e in h.values())), mutate)


def damage_json(ckpt):
    path = two_tensor_file(ckpt)
    with open(path, "r+b") as f:
        f.seek(8)
        f.write(b"[")


def damage_missing_index(ckpt):
    os.unlink(os.path.join(ckpt, "index"))


def damage_missing_file(ckpt):
    os.unlink(os.path.join(ckpt, data_files(ckpt)[-1]))


BAD_INPUTS = [
    # (name, damage, expected exit code, text the error line must contain)
    ("truncated_file", damage_truncate, 3, "truncated or trailing bytes"),
    ("truncated_file_on_rank1", damage_truncate_second_file, 3, "truncated or trailing bytes"),
    ("header_length_past_end", damage_length_past_end, 3, "runs past the end of the file"),
    ("overlapping_offsets", damage_overlap, 3, "overlap or leave a hole"),
    ("offsets_not_matching_shape", damage_shape, 3, "do not match shape"),
    ("invalid_json", damage_json, 3, "not valid JSON"),
    ("missing_index", damage_missing_index, 3, "index: missing"),
    ("index_names_missing_file", damage_missing_file, 3, "but missing"),
]


def expect_failure(result, code, text, what):
    check(result.returncode == code, f"{what}: exit {result.returncode}, expected {code}\n{result.stderr}")
    errors = tool_errors(result.stderr)
    check(len(errors) == 1, f"{what}: expected one error line, got {errors}\n{result.stderr}")
    check(text in errors[0], f"{what}: error line {errors[0]!r} does not say {text!r}")


def case_bad_inputs(args):
    for name, damage, code, text in BAD_INPUTS:
        ckpt = corrupt_copy(args.fixture, args.work, name, damage)
        before = tree_digest(ckpt)
        parent = fresh(args.work, f"bad_{name}_out")
        out = os.path.join(parent, "export")
        for mode in ([], ["--filter-optimizer"]):
            result = mpirun(args.binary, args.np, ["--ckpt-dir", ckpt, "--export-dir", out] + mode)
            expect_failure(result, code, text, f"{name} {mode}")
            check_clean_parent(parent, [])
        check(tree_digest(ckpt) == before, f"{name}: the source was modified")
        print(f"ok: {name}: {tool_errors(result.stderr)[0]}")

    # export directory exists -> 4, existing export untouched
    parent = fresh(args.work, "exists")
    out = os.path.join(parent, "export")
    os.makedirs(out)
    with open(os.path.join(out, "keep"), "w") as f:
        f.write("keep")
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out])
    expect_failure(result, 4, "already exists", "export dir exists")
    check_clean_parent(parent, ["export"])
    check(os.listdir(out) == ["keep"], "the existing export was touched")
    # --overwrite swaps the new export in
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out, "--overwrite"])
    expect_success(result, "--overwrite")
    check(not os.path.exists(os.path.join(out, "keep")), "--overwrite kept the old export")
    check_copy_export(out, latest_checkpoint(args.fixture))
    check_clean_parent(parent, ["export"])

    # the export directory must never hold the source: --overwrite would delete it
    ckpt_copy = corrupt_copy(args.fixture, args.work, "self_overwrite", lambda ckpt: None)
    before = tree_digest(os.path.dirname(ckpt_copy))
    for target in (ckpt_copy, os.path.dirname(ckpt_copy)):
        result = mpirun(args.binary, args.np, ["--ckpt-dir", ckpt_copy, "--export-dir", target, "--overwrite"])
        expect_failure(result, 4, "contains the source checkpoint", f"export over the source {target}")
    check(tree_digest(os.path.dirname(ckpt_copy)) == before, "exporting over the source modified it")

    # export parent not writable -> 4
    parent = fresh(args.work, "readonly")
    if os.geteuid() == 0:
        out = "/proc/recis-convert-test/export"  # root can write anywhere except pseudo filesystems
        expected = "does not exist"
    else:
        os.chmod(parent, 0o555)
        out = os.path.join(parent, "export")
        expected = "cannot create the export's lock file"  # the first thing written beside the export
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", out])
    expect_failure(result, 4, expected, "parent not writable")
    check(not os.path.exists(out), "an export appeared in a read-only parent")
    if os.geteuid() == 0:
        result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", "/proc/export"])
        expect_failure(result, 4, "cannot create the export's lock file", "pseudo-filesystem parent")
    os.chmod(parent, 0o755)

    # a stale staging directory of a dead run does not block the next run
    parent = fresh(args.work, "stale")
    stale = os.path.join(parent, f".export.recis-staging.{os.uname().nodename}.4194305")
    os.makedirs(stale)
    result = mpirun(args.binary, args.np, ["--ckpt-dir", args.fixture, "--export-dir", os.path.join(parent, "export")])
    expect_success(result, "stale staging directory")
    check_clean_parent(parent, ["export"])


def case_cli(args):
    result = subprocess.run([args.binary, "--help"], capture_output=True, text=True)
    check(result.returncode == 0 and "--filter-optimizer" in result.stdout and "Exit codes" in result.stdout,
          f"--help: exit {result.returncode}")
    result = subprocess.run([args.binary, "--version"], capture_output=True, text=True)
    check(result.returncode == 0 and result.stdout.startswith("recis-convert "), "--version")
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--bogus"])
    check(result.returncode == 2, f"unknown flag under mpirun: exit {result.returncode}")
    check(len(tool_errors(result.stderr)) == 1, "a usage error must be printed once, not once per rank")
    result = subprocess.run([args.binary, "--ckpt-dir", args.fixture], capture_output=True, text=True)
    check(result.returncode == 2 and "--export-dir" in result.stderr, "missing --export-dir")

    # --dry-run prints the plan and what would be dropped, and writes nothing
    parent = fresh(args.work, "dry_run")
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out, "--filter-optimizer", "--dry-run"])
    expect_success(result, "--dry-run")
    check("-> rank 1" in result.stdout and "drop \"user_id.sparse_adamw_exp_avg" in result.stdout,
          f"--dry-run does not show the plan: {result.stdout}")
    check_clean_parent(parent, [])

    # --config with a flag overriding it, --quiet silences stage lines
    config = os.path.join(parent, "job.json")
    with open(config, "w") as f:
        json.dump({"ckpt-dir": args.fixture, "export-dir": out, "filter-optimizer": False}, f)
    result = mpirun(args.binary, 2, ["--config", config, "--filter-optimizer", "--quiet"])
    expect_success(result, "--config")
    check(result.stdout.strip() == "", f"--quiet printed {result.stdout!r}")
    check_filter_export(out, latest_checkpoint(args.fixture))

    # --fg and --mc are shipped byte for byte
    fg = os.path.join(parent, "fg.json.in")
    mc = os.path.join(parent, "mc.json.in")
    with open(fg, "w") as f:
        f.write('{"features": [{"feature_name": "user_id", "embedding_dimension": 8}]}\n')
    with open(mc, "w") as f:
        f.write('{"user_columns": ["user_id"]}')
    out2 = os.path.join(parent, "export2")
    result = mpirun(args.binary, 1, ["--ckpt-dir", args.fixture, "--export-dir", out2, "--fg", fg, "--mc", mc])
    expect_success(result, "--fg/--mc")
    with open(fg, "rb") as a, open(os.path.join(out2, "fg.json"), "rb") as b:
        check(a.read() == b.read(), "fg.json is not the given file")
    with open(mc, "rb") as a, open(os.path.join(out2, "input_columns.json"), "rb") as b:
        check(a.read() == b.read(), "input_columns.json is not the given mc file")
    # an fg that is not JSON is bad input, and nothing is published
    with open(fg, "w") as f:
        f.write("{not json")
    out3 = os.path.join(parent, "export3")
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out3, "--fg", fg])
    expect_failure(result, 3, "not valid JSON", "bad fg.json")
    check(not os.path.exists(out3), "an export was published with a bad fg.json")

    # a checkpoint without sparse state (RecIS v1.2 writes an empty index and tensorkey.json) exports empty metadata
    empty = os.path.join(parent, "empty", "ckpt_5")
    os.makedirs(empty)
    with open(os.path.join(empty, "index"), "w") as f:
        f.write('{\n    "block_index": {},\n    "file_index": {}\n}')
    with open(os.path.join(empty, "tensorkey.json"), "w") as f:
        f.write("{}")
    out5 = os.path.join(parent, "export5")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", empty, "--export-dir", out5]), "checkpoint without sparse state")
    check(data_files(out5) == [], "an empty checkpoint exported data files")
    with open(os.path.join(out5, "index")) as f:
        check(f.read() == '{"block_index":{},"file_index":{}}', "empty index is wrong")

    # the shipped example job config works (paths in it are relative to the repository root)
    out4 = os.path.join(parent, "export4")
    result = mpirun(args.binary, 2, ["--config", "configs/rtp-filtered.json", "--ckpt-dir", args.fixture,
                                     "--export-dir", out4], cwd=REPO_ROOT)
    expect_success(result, "configs/rtp-filtered.json")
    check_filter_export(out4, latest_checkpoint(args.fixture))
    for shipped, given in (("fg.json", "configs/example-fg.json"), ("input_columns.json", "configs/example-mc.json")):
        with open(os.path.join(REPO_ROOT, given), "rb") as a, open(os.path.join(out4, shipped), "rb") as b:
            check(a.read() == b.read(), f"{shipped} is not {given}")

    # an export is itself a complete checkpoint (it has index and tensorkey.json): filtering it again finds no
    # optimizer state, says so, and reproduces the same data files and metadata
    out6 = os.path.join(parent, "export6")
    result = mpirun(args.binary, 2, ["--ckpt-dir", out4, "--export-dir", out6, "--filter-optimizer"])
    expect_success(result, "re-export of an export")
    check("found no optimizer state" in result.stderr, "no warning that nothing was filtered")
    first = tree_digest(out4)
    second = tree_digest(out6)
    for name in data_files(out4) + ["index", "tensorkey.json", "torch_rank_weights_embs_table_multi_shard.json"]:
        check(first[name] == second[name], f"re-export changed {name}")


CASES = {"copy": case_copy, "filter": case_filter, "cross_n": case_cross_n, "bad_inputs": case_bad_inputs,
         "cli": case_cli}


def run_cases(cases):
    """The command line shared by every integration script: CASE --binary --fixture --work [--np]."""
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(cases))
    parser.add_argument("--binary", required=True)
    parser.add_argument("--fixture", required=True, help="output directory written by make_fixture.py")
    parser.add_argument("--work", required=True)
    parser.add_argument("--np", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    try:
        cases[args.case](args)
    except CheckFailed as e:
        print(f"FAILED: {args.case}: {e}", file=sys.stderr)
        return 1
    print(f"PASSED: {args.case}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
