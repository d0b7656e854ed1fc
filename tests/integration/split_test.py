#!/usr/bin/python3
"""Integration tests of the work split below the file (issue 17, part 1), on a checkpoint where one data file holds
80% of the bytes (make_fixture.py --writer-per-table, four files; ~20 MiB).

    split_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE

Cases:
  balance    at np 4 with --chunk-mib 1 the huge file is split into pieces written by every rank: the largest rank's
             bytes read and written (run record) are at most 1.15x the mean; with --chunk-mib 0 (whole files) they
             are above 2.5x, as before the split
  identical  copy, filter and int8 exports at np 1, 2, 3 and 4 are byte-identical, manifest included; the huge
             file's manifest checksum is the XXH3-64 of its 1 MiB pieces' XXH3-64s (computed here); verify passes,
             and fails on one byte changed in the middle of a piece
  hdf5       --format hdf5 at np 4: the huge file's rows are spread over every rank (largest rank's bytes read at
             most 1.15x the mean, above 2.5x in whole files); model.h5 is identical at np 4, 1 and 3, and with int8
             embeddings at np 1 and 4
  resume     --resume journals pieces: interrupted after 5 pieces per rank, one journaled piece corrupted, resumed
             at np 3: the others adopted, that one redone, the export identical to an uninterrupted one
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (check, check_copy_export, check_filter_export, expect_success, fresh, mpirun,  # noqa: E402
                         piece_checksum, run_cases, tree_digest)

MIB = 1 << 20


def latest(args):
    return os.path.join(args.fixture, "ckpt_100")


def export(args, np_, name, extra):
    out = os.path.join(fresh(args.work, name), "export")
    result = mpirun(args.binary, np_, ["--ckpt-dir", latest(args), "--export-dir", out,
                                       "--report", out + ".record.json"] + extra)
    expect_success(result, f"{name} at np {np_}")
    with open(out + ".record.json") as f:
        record = json.load(f)
    return out, result, record


def largest_over_mean(record, key):
    values = [r[key] for r in record["per_rank"]]
    return max(values) / (sum(values) / len(values))


def case_balance(args):
    sizes = [os.path.getsize(os.path.join(latest(args), n)) for n in os.listdir(latest(args)) if n.endswith(".safetensors")]
    check(len(sizes) == 4 and max(sizes) >= 0.79 * sum(sizes), f"the fixture is not one file of 80%: {sizes}")
    _, result, whole = export(args, 4, "whole", ["--chunk-mib", "0"])
    before = largest_over_mean(whole, "bytes_in")
    check(before > 2.5, f"whole files: the largest rank read {before:.2f}x the mean; the fixture does not skew")
    check("split into" not in result.stdout, "--chunk-mib 0 split a file")
    for balance in ("round-robin", "size"):
        out, result, split = export(args, 4, f"split_{balance}", ["--chunk-mib", "1", "--balance", balance])
        check("split into 16 pieces" in result.stdout, f"no split logged:\n{result.stdout}")
        for key in ("bytes_in", "bytes_out"):
            after = largest_over_mean(split, key)
            check(after <= 1.15, f"{balance}: the largest rank's {key} is {after:.2f}x the mean (whole files: "
                                 f"{before:.2f}x): {[r[key] for r in split['per_rank']]}")
        print(f"{balance}: largest rank's bytes read / mean: {before:.2f} whole files, "
              f"{largest_over_mean(split, 'bytes_in'):.2f} split")
        check_copy_export(out, latest(args))


def case_identical(args):
    big = max((n for n in os.listdir(latest(args)) if n.endswith(".safetensors")),
              key=lambda n: os.path.getsize(os.path.join(latest(args), n)))
    for mode, extra, checker in (("copy", [], check_copy_export), ("filter", ["--filter-optimizer"], check_filter_export),
                                 ("int8", ["--quantize-embeddings", "int8"], None)):
        reference = None
        for np_ in (1, 2, 3, 4):
            out, _, _ = export(args, np_, f"{mode}_np{np_}", ["--chunk-mib", "1"] + extra)
            digest = tree_digest(out, skip=("run_record.json",))
            if reference is None:
                reference = digest
                if checker:
                    checker(out, latest(args))
                with open(os.path.join(out, "manifest.json")) as f:
                    manifest = json.load(f)
                check(manifest["checksum_piece_bytes"] == MIB, "manifest.json does not say the pieces' size")
                entry = next(e for e in manifest["data_files"] if e["name"] == big)
                with open(os.path.join(out, big), "rb") as f:
                    blob = f.read()
                key, expected = piece_checksum(blob, MIB)
                check(key == "xxh3_64_pieces" and entry.get(key) == expected and "xxh3_64" not in entry,
                      f"{mode}: the huge file's manifest entry {entry} is not its pieces' checksum {expected}")
            else:
                check(digest == reference, f"{mode}: the export at np {np_} differs from np 1's")
        expect_success(mpirun(args.binary, 2, ["verify", out]), f"{mode}: verify")
    # one byte changed in the middle of the huge file: verify names it
    path = os.path.join(out, big)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2 + 12345)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x40]))
    result = mpirun(args.binary, 2, ["verify", out])
    check(result.returncode == 3 and big in result.stderr, f"verify of a changed byte: exit {result.returncode}\n"
                                                          f"{result.stderr}")


def case_hdf5(args):
    """--format hdf5: the huge file's rows are written by every rank; model.h5 is the same whatever N."""
    _, _, whole = export(args, 4, "hdf5_whole", ["--format", "hdf5", "--chunk-mib", "0"])
    before = largest_over_mean(whole, "bytes_in")
    check(before > 2.5, f"hdf5, whole files: the largest rank read {before:.2f}x the mean")
    reference = None
    for np_ in (4, 1, 3):
        out, result, split = export(args, np_, f"hdf5_np{np_}", ["--format", "hdf5", "--chunk-mib", "1", "--buffer-mib", "1"])
        digest = tree_digest(out, skip=("run_record.json",))
        if reference is None:
            check("written by every rank" in result.stdout, f"no spread logged:\n{result.stdout}")
            after = largest_over_mean(split, "bytes_in")
            check(after <= 1.15, f"hdf5: the largest rank read {after:.2f}x the mean (whole files: {before:.2f}x): "
                                 f"{[r['bytes_in'] for r in split['per_rank']]}")
            print(f"hdf5: largest rank's bytes read / mean: {before:.2f} whole files, {after:.2f} spread")
            reference = digest
        else:
            check(digest == reference, f"hdf5: the export at np {np_} differs from np 4's")
    expect_success(mpirun(args.binary, 2, ["verify", out]), "hdf5: verify")
    # int8 rows rewritten by other ranks than their file's owner: the same bytes and the same error figures
    digests = [tree_digest(export(args, np_, f"hdf5_int8_np{np_}", ["--format", "hdf5", "--chunk-mib", "1",
                                                                    "--buffer-mib", "1", "--quantize-embeddings",
                                                                    "int8"])[0], skip=("run_record.json",))
               for np_ in (1, 4)]
    check(digests[0] == digests[1], "hdf5 int8: the export at np 4 differs from np 1's")


STAGING = ".export.recis-staging.resume"


def case_resume(args):
    """--resume journals each piece: SIGTERM to every rank after its 5th piece, one journaled piece corrupted on
    disk, then the next --resume run at np 3 adopts the others, redoes it and the rest: identical to an
    uninterrupted export."""
    reference, _, _ = export(args, 2, "uninterrupted", ["--chunk-mib", "1"])
    reference = tree_digest(reference, skip=("run_record.json",))
    parent = fresh(args.work, "interrupted")
    out = os.path.join(parent, "export")
    flags = ["--ckpt-dir", latest(args), "--export-dir", out, "--chunk-mib", "1", "--resume"]
    result = mpirun(args.binary, 2, flags + ["--debug-fail-at", "piece*5@*:term"])
    check(result.returncode == 5, f"the interrupted run: exit {result.returncode}\n{result.stderr}")
    entries = os.path.join(parent, STAGING, ".recis-journal", "files")
    pieces = sorted(n for n in os.listdir(entries) if ".piece-" in n and ".tmp." not in n)
    check(len(pieces) >= 2, f"journaled pieces: {pieces}")  # a rank stops early once the other stopped
    big, victim = pieces[0].split(".piece-")[0], int(pieces[-1].split(".piece-")[1].split("-of-")[0])
    with open(os.path.join(parent, STAGING, big), "r+b") as f:  # copy mode: piece k is output MiB k
        f.seek(victim * MIB + 100)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x01]))
    result = mpirun(args.binary, 3, flags)
    expect_success(result, "the resumed run")
    check(f"piece {victim + 1} of 16 of {big} is redone: the staged bytes" in result.stdout,
          f"no redo line for piece {victim}:\n{result.stdout}")
    check(tree_digest(out, skip=("run_record.json",)) == reference, "the resumed export differs")
    with open(os.path.join(out, "run_record.json")) as f:
        record = json.load(f)["resume"]
    check(record["adopted_pieces"] == len(pieces) - 1, f"adopted {record}, journaled {len(pieces)} pieces")
    print(f"resume: {len(pieces)} pieces journaled, {record['adopted_pieces']} adopted at np 3, one redone")


CASES = {"balance": case_balance, "identical": case_identical, "hdf5": case_hdf5, "resume": case_resume}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
