#!/usr/bin/env python3
"""Many nodes (issue 36): the real binary on a simulated cluster of 3 nodes x 2 ranks (scripts/sim-cluster.sh:
network and UTS namespaces joined by a bridge, Open MPI's rsh launcher, TCP between ranks, one shared file system).

  across     export (copy, filter, reshard, HDF5 collective and independent, split pieces), verify and merge give
             byte-identical results to np 1
  node_loss  every process of one node killed mid-export: the job ends, nothing is published; the next run, started
             from another node, removes the dead run's staging directory; with --resume it adopts the journal
  stall      --stall-timeout: a node cut off mid-export (a partition) and a rank whose work stops (a hung file
             system): one line naming the ranks and their hosts, exit 6, nothing published, --resume state kept

Needs root (namespaces); skipped (exit 77) where namespaces cannot be made. Runs serially (RESOURCE_LOCK cluster).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, REPO_ROOT, check, check_clean_parent, expect_success, fresh, mpirun,  # noqa: E402
                         tree_digest)

CLUSTER = os.path.join(REPO_ROOT, "scripts", "sim-cluster.sh")
NODES = 3
RANKS = 2 * NODES           # two slots per node: ranks 0-1 on recis-node1, 2-3 on recis-node2, 4-5 on recis-node3
JOB_TIMEOUT = 300           # seconds; a job that takes longer has hung
# the per-run record names hosts, rank counts and timings, so it differs by launch; the rest must not
NOT_COMPARED = ("run_record.json",)


def cluster(*words, check_rc=True):
    result = subprocess.run([CLUSTER, *words], capture_output=True, text=True)
    if check_rc and result.returncode != 0:
        raise RuntimeError(f"sim-cluster.sh {' '.join(words)}: {result.stderr}")
    return result.stdout


class Result:
    def __init__(self, returncode, stdout, stderr, seconds):
        self.returncode, self.stdout, self.stderr, self.seconds = returncode, stdout, stderr, seconds


class Job:
    """mpirun started on `head` (rank 0's node) across `nodes`. Output goes to files, not pipes: a process left on a
    partitioned node would hold a pipe open and hang the reader."""

    def __init__(self, binary, args, nodes=NODES, head="recis-node1", extra_env=None):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        hostfile = tempfile.NamedTemporaryFile("w", prefix="recis-hosts-", delete=False)
        for k in nodes if isinstance(nodes, (list, tuple)) else range(1, nodes + 1):
            hostfile.write(f"recis-node{k} slots=2\n")
        hostfile.close()
        self.hostfile = hostfile.name
        launcher = cluster("mpirun-args").split()
        launcher[launcher.index("--hostfile") + 1] = self.hostfile
        ranks = 2 * (len(nodes) if isinstance(nodes, (list, tuple)) else nodes)
        command = [CLUSTER, "exec", head, "mpirun", "--allow-run-as-root", *launcher, "-np", str(ranks), binary, *args]
        env = dict(os.environ, **(extra_env or {}))
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.out, stderr=self.err, env=env, start_new_session=True)

    def stderr_so_far(self):
        with open(f"/proc/self/fd/{self.err.fileno()}") as f:
            return f.read()

    def wait_for(self, text, timeout):
        """Seconds from now until `text` appears on the job's stderr, or None."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if text in self.stderr_so_far():
                return time.monotonic() - start
            if self.process.poll() is not None:
                return None
            time.sleep(0.1)
        return None

    def wait(self, timeout=JOB_TIMEOUT):
        try:
            rc = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            rc = None
        seconds = time.monotonic() - self.started
        os.unlink(self.hostfile)
        self.out.seek(0)
        self.err.seek(0)
        return Result(rc, self.out.read(), self.err.read(), seconds)


def across(binary, args, **kw):
    return Job(binary, args, **kw).wait()


def expect_ok(result, what):
    check(result.returncode == 0, f"{what} across nodes: exit {result.returncode} after {result.seconds:.1f} s\n"
                                  f"{result.stderr[-3000:]}")


def same_as_np1(args, name, options, fixture=None):
    """Exports at np 1 (one machine) and at 3 nodes x 2 ranks, and checks they are byte-identical."""
    fixture = fixture or args.fixture
    parent = fresh(args.work, name)
    local, spread = os.path.join(parent, "np1"), os.path.join(parent, "nodes")
    expect_success(mpirun(args.binary, 1, ["--ckpt-dir", fixture, "--export-dir", local] + options), f"{name} at np 1")
    result = across(args.binary, ["--ckpt-dir", fixture, "--export-dir", spread] + options)
    expect_ok(result, name)
    check(tree_digest(local, skip=NOT_COMPARED) == tree_digest(spread, skip=NOT_COMPARED),
          f"{name}: the export across {NODES} nodes differs from np 1's")
    check_clean_parent(parent, ["np1", "nodes"])
    print(f"ok: {name} across {NODES} nodes x 2 ranks is byte-identical to np 1 ({result.seconds:.1f} s)")
    return spread


def case_across(args):
    training = os.path.join(args.fixture, "ckpt_200")
    split = os.path.join(os.path.dirname(args.fixture), "split")
    out = same_as_np1(args, "copy", [], training)
    same_as_np1(args, "filter", ["--filter-optimizer", "--quantize-embeddings", "int8"], training)
    same_as_np1(args, "reshard", ["--reshard", "5"], training)
    for transfer in ("collective", "independent"):
        same_as_np1(args, f"hdf5_{transfer}", ["--format", "hdf5", "--hdf5-transfer", transfer], training)
    same_as_np1(args, "split", ["--chunk-mib", "1"], split)

    # verify across nodes: intact, then one changed byte is named
    expect_ok(across(args.binary, ["verify", out]), "verify")
    data = sorted(n for n in os.listdir(out) if n.endswith(".safetensors"))[0]
    path = os.path.join(out, data)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) - 7)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x01]))
    result = across(args.binary, ["verify", out])
    check(result.returncode == 3 and data in result.stderr, f"verify of a changed byte across nodes: exit "
                                                            f"{result.returncode}\n{result.stderr[-2000:]}")
    print("ok: verify across nodes passes an intact export and names a changed file")

    # merge across nodes: full(100) + delta(200 since 100), the same files as at np 1
    parent = fresh(args.work, "merge")
    base, delta = os.path.join(parent, "base"), os.path.join(parent, "delta")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", os.path.join(args.fixture, "ckpt_100"),
                                           "--export-dir", base]), "base export")
    expect_success(mpirun(args.binary, 2, ["--ckpt-dir", training, "--export-dir", delta, "--delta-since", base]),
                   "delta export")
    local, spread = os.path.join(parent, "np1"), os.path.join(parent, "nodes")
    expect_success(mpirun(args.binary, 1, ["merge", base, delta, "--export-dir", local]), "merge at np 1")
    result = across(args.binary, ["merge", base, delta, "--export-dir", spread])
    expect_ok(result, "merge")
    check(tree_digest(local, skip=NOT_COMPARED) == tree_digest(spread, skip=NOT_COMPARED),
          "merge: the result across nodes differs from np 1's")
    print(f"ok: merge across {NODES} nodes is byte-identical to np 1 ({result.seconds:.1f} s)")


def staging_dirs(parent):
    return sorted(n for n in os.listdir(parent) if ".recis-staging." in n)


def lose_node_mid_export(args, parent, options):
    """Starts an export across 3 nodes whose rank 4 (on recis-node3) stalls after its first file, kills every
    process of recis-node3 once the staging directory exists, and returns the job's result."""
    out = os.path.join(parent, "export")
    job = Job(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--progress-interval", "0",
                            "--debug-fail-at", "file@4:stall"] + options)
    deadline = time.monotonic() + 60
    while not staging_dirs(parent) and time.monotonic() < deadline and job.process.poll() is None:
        time.sleep(0.2)
    time.sleep(2)  # the other ranks finish their files and wait at the barrier
    killed = time.monotonic()
    cluster("kill", "recis-node3")
    result = job.wait()
    check(result.returncode is not None, f"the job hung after recis-node3 was lost\n{result.stderr[-2000:]}")
    check(result.returncode != 0, "a job that lost a node exited 0")
    ended = time.monotonic() - killed
    check(not os.path.exists(out), "a job that lost a node published")
    said = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("-")][:3]
    print(f"ok: node lost mid-export: mpirun exited {result.returncode}, {ended:.1f} s after the kill; "
          f"nothing published; mpirun said: {said}")
    return out, result


def case_node_loss(args):
    parent = fresh(args.work, "loss")
    out, _ = lose_node_mid_export(args, parent, [])
    dead = staging_dirs(parent)
    check(len(dead) == 1, f"the lost run left {dead}")
    # the next run starts from another node, on the two nodes left: the dead run's staging directory goes
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out], nodes=[2, 3], head="recis-node2")
    expect_ok(result, "the rerun")
    check(f"removed the staging directory of a dead run: {os.path.join(parent, dead[0])}" in result.stderr,
          f"the rerun did not say it removed {dead[0]}:\n{result.stderr[-2000:]}")
    check_clean_parent(parent, ["export"])
    print(f"ok: the rerun from recis-node2 removed {dead[0]} (made on recis-node1) and published")

    # with --resume the journal of the lost run is adopted by the rerun
    parent = fresh(args.work, "loss_resume")
    out, _ = lose_node_mid_export(args, parent, ["--resume"])
    check(staging_dirs(parent) == [f".export.recis-staging.resume"], f"--resume left {staging_dirs(parent)}")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--resume"], nodes=[1, 2])
    expect_ok(result, "the --resume rerun")
    check("--resume: adopted" in result.stdout and "--resume: adopted 0 files" not in result.stdout,
          f"the --resume rerun adopted nothing:\n{result.stdout[-2000:]}")
    local = os.path.join(fresh(args.work, "loss_np1"), "export")
    expect_success(mpirun(args.binary, 1, ["--ckpt-dir", args.fixture, "--export-dir", local]), "np 1")
    check(tree_digest(local, skip=NOT_COMPARED) == tree_digest(out, skip=NOT_COMPARED),
          "the export adopted after a lost node differs from np 1's")
    check_clean_parent(parent, ["export"])
    adopted = next(line for line in result.stdout.splitlines() if "--resume: adopted" in line)
    print(f"ok: --resume after a lost node adopts the journal ({adopted.split(': ', 1)[1]}); the export is "
          "byte-identical to np 1")


STALL_TIMEOUT = 5


def stall_lines(stderr):
    return [line for line in stderr.splitlines() if "stalled:" in line]


def case_stall(args):
    # A partition: rank 0 pauses before the agreement (the other ranks wait in it), and recis-node3's cable is cut.
    parent = fresh(args.work, "partition")
    out = os.path.join(parent, "export")
    job = Job(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--stall-timeout", str(STALL_TIMEOUT),
                            "--debug-fail-at", "barrier@0:stall"])
    check(job.wait_for("fault at barrier on rank 0", 60) is not None, f"the job did not reach the barrier:\n"
                                                                       f"{job.stderr_so_far()[-2000:]}")
    cluster("cut", "recis-node3")
    named = job.wait_for("stalled:", 4 * STALL_TIMEOUT)
    result = job.wait()
    lines = stall_lines(result.stderr)
    check(named is not None and len(lines) == 1, f"after the cut: {lines}\n{result.stderr[-3000:]}")
    check("no word for 5.00 s from ranks 4, 5 (recis-node3)" in lines[0] and "nothing published" in lines[0],
          f"the stall line: {lines[0]}")
    check(result.returncode == 6, f"exit {result.returncode} after a partition\n{result.stderr[-2000:]}")
    check(not os.path.exists(out), "a partitioned run published")
    check_clean_parent(parent, [])
    # the ranks behind the cut stopped themselves (a zombie waiting for its cut-off daemon to reap it has stopped)
    ps = cluster("exec", "recis-node3", "ps", "-eo", "stat=,comm=")
    left = [line for line in ps.splitlines() if line.split()[1:] == ["recis-convert"] and not line.startswith("Z")]
    check(not left, f"ranks left running on the cut-off node: {left}")
    print(f"ok: partition: '{lines[0]}' {named:.1f} s after the cut; mpirun exited 6 {result.seconds:.1f} s after "
          "the start, once TCP gave up on recis-node3; nothing published, nothing left, the cut-off ranks stopped")
    cluster("up", str(NODES))  # a fresh cluster: recis-node3 still holds the cut-off job's daemon

    # A rank whose work stops (rank 2 on recis-node2 stalls after its first file), with --resume: exit 6 from
    # every node, the journal kept and adopted by the next run.
    parent = fresh(args.work, "stuck")
    out = os.path.join(parent, "export")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--resume",
                                  "--stall-timeout", str(STALL_TIMEOUT), "--debug-fail-at", "file@2:stall"])
    lines = stall_lines(result.stderr)
    check(result.returncode == 6 and len(lines) == 1 and
          "no progress for 5.00 s from rank 2 (recis-node2)" in lines[0],
          f"a stuck rank: exit {result.returncode}, {lines}\n{result.stderr[-3000:]}")
    check(not os.path.exists(out) and staging_dirs(parent) == [".export.recis-staging.resume"],
          f"a stuck run left {os.listdir(parent)}")
    print(f"ok: stuck rank: '{lines[0]}', exit 6 after {result.seconds:.1f} s; the --resume journal is kept")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--resume"])
    expect_ok(result, "the --resume rerun after a stall")
    check("--resume: adopted" in result.stdout and "--resume: adopted 0 files" not in result.stdout,
          f"the rerun adopted nothing:\n{result.stdout[-2000:]}")
    check_clean_parent(parent, ["export"])
    print("ok: the --resume rerun after a stall adopted the journal and published")


CASES = {"across": case_across, "node_loss": case_node_loss, "stall": case_stall}


def main():
    if os.geteuid() != 0 or subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        print("skipped: the simulated cluster needs root and network namespaces")
        return 77
    # TCP gives up on a cut-off peer after about 13 s instead of Linux's 15 minutes (sim-cluster.sh)
    os.environ["RECIS_CLUSTER_TCP_RETRIES"] = "5"
    cluster("up", str(NODES))
    try:
        return run_cases(CASES)
    finally:
        cluster("down", check_rc=False)


if __name__ == "__main__":
    sys.exit(main())
