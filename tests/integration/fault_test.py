#!/usr/bin/python3
"""Fault tests: a rank killed at each stage, SIGTERM to the job, two jobs on one export directory, a full disk, a
source that shrinks or loses files mid-run, umask and symlinks. Whatever
happens, nothing incomplete is published, an existing export survives, the source is never modified, and the next
run of the same command succeeds and cleans up.

    fault_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE

Faults come from the hidden test flag --debug-fail-at STAGE@RANK[:kill|term|stall|pause].
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, REPO_ROOT, CheckFailed, check, check_clean_parent, check_copy_export, check_filter_export,  # noqa: E402
                         data_files, expect_failure, expect_success, fresh, latest_checkpoint, mpirun, tool_errors,
                         tree_digest)

FG = os.path.join(REPO_ROOT, "configs", "example-fg.json")
MC = os.path.join(REPO_ROOT, "configs", "example-mc.json")


def mpirun_command(binary, np_, args):
    command = ["mpirun", "--oversubscribe", "-np", str(np_)]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command + [binary] + args


def wait_for_killed_processes(parent, timeout=15):
    """Ranks of a killed job can outlive mpirun for a moment; a real rerun (the next cron run) comes later."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [n for n in os.listdir(parent) if ".recis-staging." in n and os.path.exists(f"/proc/{n.rsplit('.', 1)[1]}")]
        if not alive:
            return
        time.sleep(0.1)


def case_kill(args):
    """SIGKILL of one rank at each stage: mpirun fails, nothing is published, the rerun succeeds and cleans up."""
    before = tree_digest(args.fixture)
    dense = ["--fg", FG, "--mc", MC, "--dense-model", os.path.join(args.fixture, "dense_arch.pt")]
    stages = [("discover", 0, []), ("discover", 1, []), ("stream", 1, []), ("stream", 0, ["--filter-optimizer"]),
              ("barrier", 1, []), ("metadata", 0, []), ("dense", 0, dense), ("publish", 0, []),
              ("hdf5", 1, ["--format", "hdf5"])]
    for stage, rank, extra in stages:
        parent = fresh(args.work, f"kill_{stage}_{rank}")
        out = os.path.join(parent, "export")
        command = ["--ckpt-dir", args.fixture, "--export-dir", out, "--buffer-mib", "1"] + extra
        result = mpirun(args.binary, 3, command + ["--debug-fail-at", f"{stage}@{rank}"])
        check(result.returncode != 0, f"kill at {stage}@{rank}: mpirun exited 0")
        check(not os.path.exists(out), f"kill at {stage}@{rank}: an export was published")
        wait_for_killed_processes(parent)
        expect_success(mpirun(args.binary, 3, command), f"rerun after kill at {stage}@{rank}")
        check_clean_parent(parent, ["export"])
        print(f"ok: kill at {stage}@{rank}: exit {result.returncode}, nothing published, rerun clean")
    check(tree_digest(args.fixture) == before, "the source was modified")

    # with --overwrite a killed run leaves the previous export exactly as it was
    parent = fresh(args.work, "kill_overwrite")
    out = os.path.join(parent, "export")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out]), "first export")
    previous = tree_digest(out)
    for stage, rank in (("stream", 1), ("publish", 0)):
        result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out, "--overwrite",
                                         "--filter-optimizer", "--debug-fail-at", f"{stage}@{rank}"])
        check(result.returncode != 0, f"--overwrite kill at {stage}: exit 0")
        check(tree_digest(out) == previous, f"--overwrite kill at {stage}: the previous export changed")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out, "--overwrite",
                                           "--filter-optimizer"]), "overwrite after kills")
    check_filter_export(out, latest_checkpoint(args.fixture))
    check_clean_parent(parent, ["export"])


def case_term(args):
    """SIGTERM: to one rank (it stops, the others follow, exit 5), and to the whole job at a known point."""
    parent = fresh(args.work, "term_rank")
    out = os.path.join(parent, "export")
    result = mpirun(args.binary, 3, ["--ckpt-dir", args.fixture, "--export-dir", out, "--buffer-mib", "1",
                                     "--debug-fail-at", "stream@1:term"])
    check(result.returncode == 5, f"SIGTERM to rank 1: exit {result.returncode}, expected 5\n{result.stderr}")
    errors = tool_errors(result.stderr)
    check(len(errors) == 1 and "interrupted by SIGTERM; nothing was published" in errors[0], f"errors: {errors}")
    check_clean_parent(parent, [])

    # the whole job, as Slurm does at the time limit: mpirun forwards SIGTERM to every rank
    parent = fresh(args.work, "term_job")
    out = os.path.join(parent, "export")
    log_path = os.path.join(parent, "..", "term_job.stderr")
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    with open(log_path, "w") as log:
        job = subprocess.Popen(mpirun_command(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out,
                                                               "--debug-fail-at", "barrier@0:stall"]),
                               stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.time() + 60
        while time.time() < deadline and "[test] fault at barrier" not in open(log_path).read():
            time.sleep(0.1)
        check("[test] fault at barrier" in open(log_path).read(), "the job never reached the stall point")
        job.send_signal(signal.SIGTERM)
        started = time.time()
        try:
            code = job.wait(timeout=20)
        except subprocess.TimeoutExpired:
            job.kill()
            raise CheckFailed("the job did not stop within 20 s of SIGTERM")
    check(code != 0, "SIGTERM to the job: exit 0")
    check(time.time() - started < 20, "too slow to stop")
    check_clean_parent(parent, [])
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out]), "rerun after SIGTERM")
    print(f"ok: SIGTERM to the job: exit {code}, stopped in {time.time() - started:.1f} s, nothing published")


def case_concurrent(args):
    """Two jobs started at once on the same export directory: one wins, the other fails clearly."""
    parent = fresh(args.work, "concurrent")
    out = os.path.join(parent, "export")
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    jobs = [subprocess.Popen(mpirun_command(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out]),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(job.wait(timeout=300), job.stderr.read()) for job in jobs]
    codes = sorted(code for code, _ in results)
    check(codes == [0, 4], f"exit codes {codes}, expected one 0 and one 4")
    loser = next(err for code, err in results if code == 4)
    # it loses at the export's lock while the other runs, or at the rename once the other has published
    check("another recis-convert run is exporting here" in loser or "already exists" in loser,
          f"the losing job does not say why: {loser}")
    check_copy_export(out, latest_checkpoint(args.fixture))
    check_clean_parent(parent, ["export"])


def case_disk_full(args):
    """A full file system: exit 4 naming the file, nothing published, no staging left. Needs root (tmpfs mount)."""
    mount_point = fresh(args.work, "small_fs")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount_point]).returncode:
        print("SKIPPED: disk_full needs root to mount a small tmpfs")
        return
    try:
        for extra in ([], ["--filter-optimizer"], ["--format", "hdf5"]):
            out = os.path.join(mount_point, "export")
            result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out] + extra)
            check(result.returncode == 4, f"disk full {extra}: exit {result.returncode}, expected 4\n{result.stderr}")
            errors = tool_errors(result.stderr)
            expected = "needs about" if "hdf5" in extra else "No space left on device"
            # each rank that hit the full disk says so on its own line
            check(errors and all(expected in e for e in errors), f"disk full {extra}: {errors}")
            check_clean_parent(mount_point, [])
            print(f"ok: disk full {extra}: {errors[0]}")
    finally:
        subprocess.run(["umount", mount_point])


def wait_for_line(log_path, text, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(log_path).read():
            return
        time.sleep(0.05)
    raise CheckFailed(f"the job never printed {text!r}:\n{open(log_path).read()}")


def run_paused(command, stage, log_path, change, env=None):
    """Runs `command` (a job started with --debug-fail-at STAGE@0:pause), calls change() once rank 0 is paused at
    `stage`, and returns the job's exit code and stderr."""
    with open(log_path, "w") as log:
        job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            wait_for_line(log_path, f"[test] fault at {stage}")
            change()
            code = job.wait(timeout=120)
        except BaseException:
            job.kill()
            raise
    return code, open(log_path).read()


def rewrite_in_place(path):
    """The same size, other bytes: a save rewriting a file in place (only the times tell)."""
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))


def case_source_changes(args):
    """The source shrinks, loses files or is rewritten in place with the same size after discovery (a checkpoint
    still being written, or being cleaned up): exit 3 naming the file, as tar's "file changed as we read it",
    nothing published, no staging left. Rank 0 pauses after its first buffer while the test changes every data
    file of a private copy of the checkpoint. A rewrite used to give exit 0 and an export that was neither
    version and verified (issue 33)."""
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    for change, expected in (("shrink", ("shrank while being read", "since discovery", "changed as we read it")),
                             ("delete", ("cannot open", "changed as we read it")),
                             ("rewrite", ("changed as we read it", "modified since discovery"))):
        for extra in ([], ["--filter-optimizer"], ["--format", "hdf5"], ["--reshard", "3"]):
            stage = "hdf5" if "hdf5" in extra else "stream"
            parent = fresh(args.work, f"source_{change}")
            ckpt = os.path.join(parent, "ckpt_1")
            shutil.copytree(latest_checkpoint(args.fixture), ckpt)
            out = os.path.join(parent, "export")
            def change_every_file(change=change, ckpt=ckpt):
                for name in data_files(ckpt):
                    path = os.path.join(ckpt, name)
                    if change == "delete":
                        os.unlink(path)
                    elif change == "rewrite":
                        rewrite_in_place(path)
                    else:
                        os.truncate(path, os.path.getsize(path) // 2)

            code, stderr = run_paused(mpirun_command(args.binary, 2, ["--ckpt-dir", ckpt, "--export-dir", out,
                                                                      "--buffer-mib", "1", "--debug-fail-at",
                                                                      f"{stage}@0:pause"] + extra),
                                      stage, os.path.join(args.work, f"source_{change}.stderr"), change_every_file,
                                      env)
            what = f"source {change} {extra}"
            check(code == 3, f"{what}: exit {code}, expected 3\n{stderr}")
            errors = tool_errors(stderr)
            check(errors and all(ckpt in e and any(x in e for x in expected) for e in errors),
                  f"{what}: errors do not name a source file and say what changed: {errors}")
            check_clean_parent(parent, ["ckpt_1"])
            print(f"ok: {what}: {errors[0]}")


def case_merge_source_changes(args):
    """merge checks its inputs against their manifests, then reads them again to merge: a delta rewritten in place
    in between (same size) fails the merge with exit 3, nothing published (issue 33)."""
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    parent = fresh(args.work, "merge_rewrite")
    base, delta, merged = (os.path.join(parent, n) for n in ("base", "delta", "merged"))
    first = min((d for d in os.listdir(args.fixture) if d.startswith("ckpt_")), key=lambda d: int(d[5:]))
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", os.path.join(args.fixture, first), "--export-dir", base]),
                   "merge's base")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--delta-since", base, "--export-dir", delta]),
                   "merge's delta")
    def rewrite_delta():
        for name in data_files(delta):
            rewrite_in_place(os.path.join(delta, name))

    code, stderr = run_paused(mpirun_command(args.binary, 2, ["merge", base, delta, "--export-dir", merged,
                                                              "--debug-fail-at", "merge@0:pause"]),
                              "merge", os.path.join(args.work, "merge_rewrite.stderr"), rewrite_delta, env)
    errors = tool_errors(stderr)
    check(code == 3, f"merge with a delta rewritten mid-run: exit {code}, expected 3\n{errors}")
    check(len(errors) == 1 and delta in errors[0] and "changed as we read it" in errors[0],
          f"merge with a delta rewritten mid-run: {errors}")
    check_clean_parent(parent, ["base", "delta"])
    print(f"ok: merge with a delta rewritten mid-run: {errors[0]}")


def dead_pid():
    """A process id that no longer exists (a finished child's)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def case_files_and_links(args):
    """Exported files get the user's umask; nothing follows a symlink out of the export location."""
    dense = ["--fg", FG, "--mc", MC, "--dense-model", os.path.join(args.fixture, "dense_arch.pt")]
    for extra, name in ((dense, "safetensors+dense"), (["--format", "hdf5"], "hdf5")):
        parent = fresh(args.work, "umask")
        out = os.path.join(parent, "export")
        old = os.umask(0o007)  # inherited by mpirun and the ranks; 0666 & ~007 = 0660 tells "0644 by default" apart
        try:
            expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out] + extra), name)
        finally:
            os.umask(old)
        for root, dirs, files in os.walk(out):
            for entry, want in [(d, 0o770) for d in dirs] + [(f, 0o660) for f in files] + [("", 0o770)]:
                mode = stat.S_IMODE(os.lstat(os.path.join(root, entry)).st_mode)
                check(mode == want, f"{name}: {os.path.join(root, entry)} has mode {mode:o}, expected {want:o} (umask 007)")
        print(f"ok: umask 007 -> files 660, directories 770 ({name})")

    # the export directory is a symlink to a directory elsewhere: refused, and the target is not touched
    parent = fresh(args.work, "links")
    outside = os.path.join(args.work, "links_outside")
    shutil.rmtree(outside, ignore_errors=True)
    os.makedirs(outside)
    with open(os.path.join(outside, "precious"), "w") as f:
        f.write("precious")
    out = os.path.join(parent, "export")
    os.symlink(outside, out)
    for overwrite, text in (([], "already exists"), (["--overwrite"], "is not a directory")):
        result = mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out] + overwrite)
        expect_failure(result, 4, text, f"export dir is a symlink {overwrite}")
        check(os.path.islink(out) and os.listdir(outside) == ["precious"], "the symlink or its target was touched")
    print("ok: an export directory that is a symlink is refused, with or without --overwrite")

    # a stale staging directory of a dead run holding symlinks out: removed without following them
    os.unlink(out)
    stale = os.path.join(parent, f".export.recis-staging.{socket.gethostname()}.{dead_pid()}")
    os.makedirs(stale)
    os.symlink(outside, os.path.join(stale, "dir_link"))
    os.symlink(os.path.join(outside, "precious"), os.path.join(stale, "file_link"))
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", args.fixture, "--export-dir", out]), "run next to stale staging")
    check_clean_parent(parent, ["export"])
    check(os.listdir(outside) == ["precious"] and open(os.path.join(outside, "precious")).read() == "precious",
          "removing the stale staging directory followed a symlink")
    check_copy_export(out, latest_checkpoint(args.fixture))
    print("ok: stale staging with symlinks out removed, their targets untouched")


CASES = {"kill": case_kill, "term": case_term, "concurrent": case_concurrent, "disk_full": case_disk_full,
         "source_changes": case_source_changes, "merge_source_changes": case_merge_source_changes, "files_and_links": case_files_and_links}


if __name__ == "__main__":
    sys.exit(run_cases(CASES))
