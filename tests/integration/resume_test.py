#!/usr/bin/python3
"""Integration tests of --resume, on ckpt_200 of the training run of delta_test.py (12 data files, 9 of them
written by a filtered export).

    resume_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  interrupt  SIGTERM to every rank at about 30% and at about 80% of the files, and SIGKILL of one rank: the staging
             directory is kept (nothing published), the next --resume run (at another N) adopts every journaled file
             and publishes an export byte-identical to an uninterrupted one; the run record says what was adopted
  checks     a journaled file corrupted before resuming is redone; a source changed between the runs, or other
             options, mean a fresh start with a line saying why; --resume with --reshard or --format hdf5 is exit 2
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import check, expect_success, fresh, mpirun, run_cases, tree_digest  # noqa: E402
from fault_test import wait_for_killed_processes  # noqa: E402

STAGING = ".export.recis-staging.resume"


def command(args, np_, out, extra=()):
    prefix = ["mpirun", "--oversubscribe", "-np", str(np_)]
    if os.geteuid() == 0:
        prefix.append("--allow-run-as-root")
    return prefix + [args.binary, "--ckpt-dir", args.ckpt, "--export-dir", out, "--filter-optimizer", "--resume"] + \
        list(extra)


def journaled(parent):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(parent, STAGING, ".recis-journal", "files", "*"))
                  if ".tmp." not in p)


def uninterrupted(args):
    out = os.path.join(fresh(args.work, "uninterrupted"), "export")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.ckpt, "--export-dir", out, "--filter-optimizer"]),
                   "the uninterrupted export")
    return tree_digest(out, skip=("run_record.json",))


def resume_and_compare(args, parent, expected, reference, what):
    """The next --resume run, at np 3: adopts `expected` files and publishes the reference export."""
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, 3, ["--ckpt-dir", args.ckpt, "--export-dir", out, "--filter-optimizer", "--resume"])
    expect_success(result, f"{what}: the resumed run")
    check(tree_digest(out, skip=("run_record.json",)) == reference, f"{what}: the resumed export differs")
    check(sorted(os.listdir(parent)) == ["export"], f"{what}: left {sorted(os.listdir(parent))}")
    with open(os.path.join(out, "run_record.json")) as f:
        record = json.load(f)["resume"]
    check(record["adopted_files"] == expected, f"{what}: adopted {record}, expected {expected} files")
    return record


def case_interrupt(args):
    reference = uninterrupted(args)
    for label, nth, np_ in (("30%", 2, 2), ("80%", 5, 2)):
        parent = fresh(args.work, f"term_{label[:-1]}")
        out = os.path.join(parent, "export")
        # every rank stalls after its nth file; once their files are journaled, SIGTERM to the job (as Slurm sends)
        job = subprocess.Popen(command(args, np_, out, ["--debug-fail-at", f"file*{nth}@*:stall"]),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none"))
        deadline = time.time() + 60
        while time.time() < deadline and job.poll() is None:
            time.sleep(0.2)
            if journaled(parent) and os.path.exists(os.path.join(parent, STAGING)):
                time.sleep(1)  # the stalled ranks' writeback finishes journaling
                break
        job.send_signal(signal.SIGTERM)
        _, err = job.communicate(timeout=60)
        check(job.returncode != 0, f"{label}: the interrupted run exited 0")
        check("--resume: kept" in err, f"{label}: the run did not say it kept its staging directory:\n{err}")
        check(not os.path.exists(out), f"{label}: an interrupted run published")
        done = journaled(parent)
        check(len(done) >= 2, f"{label}: only {done} journaled")
        record = resume_and_compare(args, parent, len(done), reference, label)
        print(f"ok: SIGTERM at {label}: {len(done)} of 9 files journaled, adopted by the next run at np 3 "
              f"({record['adopted_bytes']} bytes, {record['seconds_saved']:.3f} s saved), identical export")
    # SIGKILL of one rank: its journaled files and the others' are adopted, the staging directory is not stale
    parent = fresh(args.work, "kill")
    result = subprocess.run(command(args, 2, os.path.join(parent, "export"), ["--debug-fail-at", "file*3@1:kill"]),
                            capture_output=True, text=True, env=dict(os.environ,
                                                                     OMPI_MCA_btl_vader_single_copy_mechanism="none"))
    check(result.returncode != 0, "SIGKILL of rank 1: exit 0")
    wait_for_killed_processes(parent)
    done = journaled(parent)
    check(done, "SIGKILL of rank 1: nothing journaled")
    resume_and_compare(args, parent, len(done), reference, "SIGKILL of rank 1")
    print(f"ok: SIGKILL of rank 1: {len(done)} files journaled and adopted, identical export")


def interrupted(args, name):
    """A run stopped by SIGTERM on rank 0 after its second file: its staging directory and journal stay."""
    parent = fresh(args.work, name)
    result = subprocess.run(command(args, 1, os.path.join(parent, "export"), ["--debug-fail-at", "file*4@0:term"]),
                            capture_output=True, text=True)
    check(result.returncode == 5, f"{name}: exit {result.returncode}\n{result.stderr}")
    check(len(journaled(parent)) >= 3, f"{name}: journaled {journaled(parent)}")
    return parent


def case_checks(args):
    reference = uninterrupted(args)
    # a journaled file corrupted on disk: that file is redone, the others adopted
    parent = interrupted(args, "corrupt")
    done = journaled(parent)
    victim = os.path.join(parent, STAGING, done[0])
    with open(victim, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.ckpt, "--export-dir", out, "--filter-optimizer", "--resume"])
    expect_success(result, "resume after corrupting a journaled file")
    check(f"{done[0]} is redone: the staged file's size or checksum" in result.stdout,
          f"no redo line:\n{result.stdout}")
    check(tree_digest(out, skip=("run_record.json",)) == reference, "the export after a corrupt file differs")
    with open(os.path.join(out, "run_record.json")) as f:
        check(json.load(f)["resume"]["adopted_files"] == len(done) - 1, "the corrupt file was adopted")

    # other options, then a changed source: a fresh start, saying why
    parent = interrupted(args, "options")
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.ckpt, "--export-dir", os.path.join(parent, "export"),
                                     "--filter-optimizer", "--drop-slot", "step_filter", "--resume"])
    expect_success(result, "resume with other options")
    check("a fresh start" in result.stdout and "option drop-slot differs" in result.stdout,
          f"no fresh-start line:\n{result.stdout}")
    args.ckpt = os.path.join(fresh(args.work, "source_copy"), "ckpt_200")  # a copy this case may touch
    shutil.copytree(os.path.join(args.fixture, "ckpt_200"), args.ckpt)
    parent = interrupted(args, "source")
    source_file = sorted(glob.glob(os.path.join(args.ckpt, "*.safetensors")))[-1]
    stat = os.stat(source_file)
    os.utime(source_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    result = mpirun(args.binary, 2, ["--ckpt-dir", args.ckpt, "--export-dir", os.path.join(parent, "export"),
                                     "--filter-optimizer", "--resume"])
    expect_success(result, "resume after the source changed")
    check("a fresh start" in result.stdout and os.path.basename(source_file) + " changed" in result.stdout,
          f"no fresh-start line:\n{result.stdout}")
    with open(os.path.join(parent, "export", "run_record.json")) as f:
        check(json.load(f)["resume"]["adopted_files"] == 0, "a changed source was adopted")

    for extra in (["--reshard", "3"], ["--format", "hdf5"]):
        result = mpirun(args.binary, 2, ["--ckpt-dir", args.ckpt, "--export-dir", os.path.join(args.work, "x"),
                                         "--resume"] + extra)
        check(result.returncode == 2 and "does not combine with" in result.stderr, f"--resume {extra}: "
              f"exit {result.returncode}\n{result.stderr}")
    print("ok: a corrupt journaled file is redone; other options and a changed source start afresh, saying why; "
          "--resume refuses --reshard and hdf5")


CASES = {"interrupt": case_interrupt, "checks": case_checks}

def with_ckpt(case):
    def run(args):
        args.ckpt = os.path.join(args.fixture, "ckpt_200")
        case(args)
    return run


if __name__ == "__main__":
    sys.exit(run_cases({name: with_ckpt(case) for name, case in CASES.items()}))
