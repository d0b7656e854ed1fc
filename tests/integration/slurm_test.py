#!/usr/bin/python3
"""The batch script under a real Slurm (scripts/slurm-local.sh: slurmctld, slurmd and munge on localhost), jobs
submitted with `sbatch --wait` as the non-root job user, ranks as Slurm tasks, a real RecIS v1.1 checkpoint in.

    slurm_test.py CASE --binary BIN --fixture tests/fixtures/recis-v1.1-real --work DIR [--np N]
    CASE: plain | time_limit | split | requeue

plain: an export at N tasks with mpirun and with RECIS_LAUNCHER=srun (PMIx): exit 0, both verify, identical.
time_limit: a job that runs into its time limit (--time=1, the warning 30 s before): the batch shell passes the
warning on, every rank stops, nothing is published, the job's exit code as Slurm records it is 5:0 (not a signal)
and its log holds the tool's own "interrupted" line. With --resume the journal is kept, and the job submitted
again adopts it and completes.

split: `srun -n N` without PMIx (--mpi=none, --mpi=pmi2), which this Open MPI cannot join into one job: one line
saying so, exit 2 for the job, nothing published.

requeue: a --resume job submitted with --requeue is requeued by `scontrol requeue` mid-export: the first run is
killed (Slurm signals every process) and leaves its journal, the requeued run adopts the journaled files and exits 0 (COMPLETED 0:0, Restarts=1), the
log keeps both runs (append mode), and the export equals one made in a single run.

Exits 77 (skipped) when no Slurm runs (scripts/slurm-local.sh start; .ci/run starts one).
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, fresh, run_cases, tree_digest  # noqa: E402

SBATCH_SCRIPT = os.path.join(REPO_ROOT, "scripts", "slurm", "recis-convert.sbatch")
SLURM_DIR = os.environ.get("RECIS_SLURM_DIR", "/var/tmp/recis-slurm")
SLURM_CONF = os.environ.get("SLURM_CONF", os.path.join(SLURM_DIR, "slurm.conf"))
JOB_USER = os.environ.get("RECIS_SLURM_USER", "recis-slurm")
SKIPPED = 77


def slurm_env():
    return dict(os.environ, SLURM_CONF=SLURM_CONF)


def job_dir(args, name):
    """A fresh directory the job user owns, where the job writes its log and export. It lies under Slurm's state
    directory, not the clone (which may sit in a home the job user cannot enter)."""
    path = fresh(os.path.join(SLURM_DIR, "work", os.path.basename(args.work)), name)
    user = pwd.getpwnam(JOB_USER)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def stage_inputs(args):
    """The binary with its plugin, the batch script and a real checkpoint, where the job user can read them."""
    root = fresh(os.path.join(SLURM_DIR, "work", os.path.basename(args.work)), "inputs")
    for name in ("recis-convert", "librecis_dense.so"):
        shutil.copy2(os.path.join(os.path.dirname(args.binary), name), root)
    shutil.copy2(SBATCH_SCRIPT, root)
    shutil.copytree(os.path.join(args.fixture, "A", "ckpt_6"), os.path.join(root, "ckpt_6"))
    for directory, _, _ in os.walk(root):
        os.chmod(directory, 0o755)
    args.binary = os.path.join(root, "recis-convert")
    return root, os.path.join(root, "ckpt_6")


def sbatch(args, directory, tool_args, options=(), env=(), script=True):
    """Submits the batch script (or, without `script`, the --wrap in `options`) as the job user and waits for the
    job: (job id, sbatch's exit code, log text)."""
    exports = ",".join(["ALL", f"RECIS_CONVERT={args.binary}", "OMPI_MCA_btl_vader_single_copy_mechanism=none"] +
                       list(env))
    command = ["runuser", "-u", JOB_USER, "--", "env", f"SLURM_CONF={SLURM_CONF}", "sbatch", "--wait", "--parsable",
               f"--ntasks={args.np}", "--cpus-per-task=1", "--mem-per-cpu=512M", f"--export={exports}",
               f"--output={directory}/job-%j.out"] + list(options) + ([args.sbatch_script] if script else []) + \
        list(tool_args)
    result = subprocess.run(command, capture_output=True, text=True, cwd=directory, timeout=600)
    job = result.stdout.strip().split(";")[0]
    check(job.isdigit(), f"sbatch printed no job id: {result.stdout!r} {result.stderr!r}")
    with open(os.path.join(directory, f"job-{job}.out")) as f:
        log = f.read()
    return job, result.returncode, log


def job_record(job):
    """JobState and ExitCode as slurmctld keeps them (no accounting database: scontrol, kept MinJobAge)."""
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, env=slurm_env()).stdout
    state = re.search(r"JobState=(\S+)", text)
    code = re.search(r"\bExitCode=(\S+)", text)
    check(state and code, f"scontrol show job {job}: {text}")
    return state.group(1), code.group(1)


def case_plain(args):
    ckpt = args.ckpt
    digests = {}
    for launcher in ("mpirun", "srun"):
        directory = job_dir(args, f"plain_{launcher}")
        out = os.path.join(directory, "export")
        job, code, log = sbatch(args, directory, ["--ckpt-dir", ckpt, "--export-dir", out, "--filter-optimizer"],
                                env=[f"RECIS_LAUNCHER={launcher}"])
        state, exit_code = job_record(job)
        check(code == 0 and state == "COMPLETED" and exit_code == "0:0",
              f"{launcher}: sbatch exit {code}, job {state} {exit_code}\n{log}")
        check(f"published {out}" in log, f"{launcher}: the log does not say it published:\n{log}")
        verified = subprocess.run(["runuser", "-u", JOB_USER, "--", args.binary, "verify", out], capture_output=True,
                                  text=True)
        check(verified.returncode == 0, f"{launcher}: verify: {verified.stderr}")
        digests[launcher] = tree_digest(out, skip=("run_record.json",))
        print(f"ok: {launcher}: job {job} {state} {exit_code} at {args.np} tasks, verified")
    check(digests["mpirun"] == digests["srun"], "the mpirun and srun exports differ")
    print("ok: the mpirun and srun exports are identical")


def case_time_limit(args):
    ckpt = args.ckpt
    for launcher in ("mpirun", "srun"):
        directory = job_dir(args, f"time_limit_{launcher}")
        out = os.path.join(directory, "export")
        # every rank stalls mid-stream until a signal comes: the job can only end by its time limit
        job, code, log = sbatch(args, directory, ["--ckpt-dir", ckpt, "--export-dir", out,
                                                  "--debug-fail-at", "stream@*:stall"],
                                options=["--time=1", "--signal=B:USR1@30"], env=[f"RECIS_LAUNCHER={launcher}"])
        state, exit_code = job_record(job)
        check(exit_code == "5:0" and state == "FAILED",
              f"{launcher}: job {job} ended {state} with ExitCode {exit_code}, expected FAILED 5:0\n{log}")
        check("interrupted by SIGUSR1" in log, f"{launcher}: no 'interrupted' line of the tool in the log:\n{log}")
        check(not os.path.exists(out), f"{launcher}: the export was published")
        left = [n for n in os.listdir(directory) if n.startswith(".")]
        check(not left, f"{launcher}: left behind: {left}")
        print(f"ok: {launcher}: job {job} {state} ExitCode {exit_code}, nothing published, the log says "
              f"{[line for line in log.splitlines() if 'interrupted' in line][0]!r}")
    # with --resume the interrupted job keeps what it journaled, and the same job submitted again adopts it
    directory = job_dir(args, "time_limit_resume")
    out = os.path.join(directory, "export")
    job, code, log = sbatch(args, directory, ["--ckpt-dir", ckpt, "--export-dir", out, "--resume",
                                              "--debug-fail-at", "file*2@*:stall"],
                            options=["--time=1", "--signal=B:USR1@30"])
    state, exit_code = job_record(job)
    check(exit_code == "5:0" and os.path.isdir(os.path.join(directory, ".export.recis-staging.resume")),
          f"--resume at the time limit: job {job} {state} {exit_code}, or no journal kept\n{log}")
    again, code, log = sbatch(args, directory, ["--ckpt-dir", ckpt, "--export-dir", out, "--resume"])
    state, exit_code = job_record(again)
    adopted = [line for line in log.splitlines() if "--resume: adopted" in line]
    check(exit_code == "0:0" and adopted and os.path.isdir(out),
          f"the resubmitted job {again}: {state} {exit_code}, adopted {adopted}\n{log}")
    print(f"ok: --resume: job {job} stopped at its time limit (5:0) keeping its journal; job {again} "
          f"{state} {exit_code}: {adopted[0]!r}")


def case_split(args):
    for mpi in ("none", "pmi2"):
        directory = job_dir(args, f"split_{mpi}")
        out = os.path.join(directory, "export")
        command = f"srun --mpi={mpi} {args.binary} --ckpt-dir {args.ckpt} --export-dir {out}"
        job, code, log = sbatch(args, directory, [], options=["--wrap", command], script=False)
        state, exit_code = job_record(job)
        said = [line for line in log.splitlines() if "refusing to run" in line]
        check(exit_code == "2:0" and len(said) == 1 and "without PMIx" in said[0],
              f"--mpi={mpi}: job {job} {state} {exit_code}, expected exit 2 and one line:\n{log}")
        check("OMPI was not built" not in log, f"--mpi={mpi}: MPI_Init ran:\n{log}")
        check(not os.path.exists(out), f"--mpi={mpi}: the export was published")
        print(f"ok: srun --mpi={mpi}: job {job} {state} {exit_code}: {said[0]!r}")


def wait_for(predicate, what, seconds=240):
    deadline = time.monotonic() + seconds
    while not predicate():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        time.sleep(1)


def job_field(job, field):
    text = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, env=slurm_env()).stdout
    found = re.search(rf"\b{field}=(\S+)", text)
    return found.group(1) if found else ""


def case_requeue(args):
    reference = job_dir(args, "requeue_reference")
    job, code, _ = sbatch(args, reference, ["--ckpt-dir", args.ckpt, "--export-dir", f"{reference}/export"])
    check(code == 0, "the reference export failed")
    directory = job_dir(args, "requeue")
    out = os.path.join(directory, "export")
    # each rank has 4 of the 8 files: the first run stalls after its 3rd (journaled), the requeued run adopts 3
    # and exports 1, so it never reaches the stall
    exports = ",".join(["ALL", f"RECIS_CONVERT={args.binary}", "OMPI_MCA_btl_vader_single_copy_mechanism=none"])
    submitted = subprocess.run(
        ["runuser", "-u", JOB_USER, "--", "env", f"SLURM_CONF={SLURM_CONF}", "sbatch", "--parsable", "--requeue",
         f"--ntasks={args.np}", "--cpus-per-task=1", "--mem-per-cpu=512M", f"--export={exports}",
         f"--output={directory}/job-%j.out", args.sbatch_script, "--ckpt-dir", args.ckpt, "--export-dir", out,
         "--resume", "--debug-fail-at", "file*3@*:stall"], capture_output=True, text=True, cwd=directory)
    job = submitted.stdout.strip().split(";")[0]
    check(job.isdigit(), f"sbatch: {submitted.stdout!r} {submitted.stderr!r}")
    log_path = os.path.join(directory, f"job-{job}.out")

    def log():
        return open(log_path).read() if os.path.exists(log_path) else ""
    wait_for(lambda: log().count("[test] fault at file") == args.np, "every rank to stall after its 3rd file")
    requeued = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, env=slurm_env())
    check(requeued.returncode == 0, f"scontrol requeue {job}: {requeued.stderr}")
    wait_for(lambda: job_field(job, "JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
             "the requeued run to end")
    state, exit_code = job_record(job)
    text = log()
    check(state == "COMPLETED" and exit_code == "0:0" and job_field(job, "Restarts") == "1",
          f"job {job}: {state} {exit_code}, Restarts={job_field(job, 'Restarts')}\n{text}")
    check(text.count(f"job {job} on") == 2, f"the log does not keep both runs:\n{text}")
    # scontrol requeue signals every process of the job at once (mpirun kills the ranks and exits 1, without their
    # lines); what was journaled before stays, and the requeued run adopts it
    check("DUE TO JOB REQUEUE" in text and "--resume: adopted" in text, f"no requeue or adoption in the log:\n{text}")
    check(tree_digest(out, skip=("run_record.json",)) == tree_digest(f"{reference}/export", skip=("run_record.json",)),
          "the requeued export differs from a single run's")
    adopted = [line for line in text.splitlines() if "--resume: adopted" in line][0]
    print(f"ok: job {job} requeued mid-export: {state} {exit_code}, Restarts=1, both runs in one log; {adopted!r}")


def staged(case):
    def run(args):
        root, args.ckpt = stage_inputs(args)
        args.sbatch_script = os.path.join(root, os.path.basename(SBATCH_SCRIPT))
        case(args)
    return run


CASES = {"plain": staged(case_plain), "time_limit": staged(case_time_limit), "split": staged(case_split),
         "requeue": staged(case_requeue)}

if __name__ == "__main__":
    if subprocess.run(["sinfo", "-h"], capture_output=True, env=slurm_env()).returncode != 0 or \
            shutil.which("sbatch") is None:
        print(f"SKIPPED: no Slurm answers at {SLURM_CONF} (scripts/slurm-local.sh start)")
        sys.exit(SKIPPED)
    sys.exit(run_cases(CASES))
