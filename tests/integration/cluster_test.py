#!/usr/bin/env python3
"""Many nodes (issue 36): the real binary on a simulated cluster of 3 nodes x 2 ranks (scripts/sim-cluster.sh:
network and UTS namespaces joined by a bridge, Open MPI's rsh launcher, TCP between ranks, one shared file system).

  across     export (copy, filter, reshard, HDF5 collective and independent, split pieces), verify and merge give
             byte-identical results to np 1
  node_loss  every process of one node killed mid-export: the job ends, nothing is published; the next run, started
             from another node, removes the dead run's staging directory; with --resume it adopts the journal
  stall      --stall-timeout: a node cut off mid-export (a partition) and a rank whose work stops (a hung file
             system): one line naming the ranks and their hosts, exit 6, nothing published, --resume state kept
  node_local files on rank 0's node alone: --report, --asset-files, --sample-inputs work; a --config every rank
             reads, and an export directory every rank writes into, are refused naming the nodes that lack them

Needs root (namespaces); skipped (exit 77) where namespaces cannot be made. Runs serially (RESOURCE_LOCK cluster).
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import (run_cases, REPO_ROOT, check, check_clean_parent, expect_success, fresh, mpirun,  # noqa: E402
                         tree_digest)

CLUSTER = os.path.join(REPO_ROOT, "scripts", "sim-cluster.sh")
LOCAL = "/run/recis-cluster/local"  # each node's own storage (sim-cluster.sh); rank 0 runs on recis-node1
FG = os.path.join(REPO_ROOT, "configs", "example-fg.json")
MC = os.path.join(REPO_ROOT, "configs", "example-mc.json")
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


def running_on(node, command):
    """Pids of `command` still running in `node` (its network namespace; zombies, which a cut-off daemon has not
    reaped yet, have stopped)."""
    pids = subprocess.run(["ip", "netns", "pids", node], capture_output=True, text=True).stdout.split()
    running = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2]
        if name == command and state != "Z":
            running.append(int(pid))
    return running


def stall_lines(stderr):
    return [line for line in stderr.splitlines() if "stalled:" in line]


def case_stall(args):
    # A partition: rank 0 pauses (the other ranks wait for it in a collective: the agreement, or a collective HDF5
    # write), and recis-node3's cable is cut. Only the cut-off ranks are named: the ranks waiting for rank 0 are
    # not stuck.
    for where, options in (("at the agreement", ["--debug-fail-at", "barrier@0:stall"]),
                           ("in a collective HDF5 write", ["--format", "hdf5", "--hdf5-transfer", "collective",
                                                           "--debug-fail-at", "hdf5@0:stall"])):
        parent = fresh(args.work, "partition")
        out = os.path.join(parent, "export")
        job = Job(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out,
                                "--stall-timeout", str(STALL_TIMEOUT)] + options)
        stage = options[-1].split("@")[0]
        check(job.wait_for(f"fault at {stage} on rank 0", 60) is not None,
              f"the job did not reach {stage}:\n{job.stderr_so_far()[-2000:]}")
        cluster("cut", "recis-node3")
        named = job.wait_for("stalled:", 4 * STALL_TIMEOUT)
        result = job.wait()
        lines = stall_lines(result.stderr)
        check(named is not None and len(lines) == 1, f"after the cut {where}: {lines}\n{result.stderr[-3000:]}")
        check("no word for 5.00 s from ranks 4, 5 (recis-node3)" in lines[0] and "nothing published" in lines[0] and
              "no progress" not in lines[0], f"the stall line {where}: {lines[0]}")
        check(result.returncode == 6, f"exit {result.returncode} after a partition {where}\n{result.stderr[-2000:]}")
        check(not os.path.exists(out), f"a partitioned run published ({where})")
        check_clean_parent(parent, [])
        left = running_on("recis-node3", "recis-convert")
        check(not left, f"ranks left running on the cut-off node: pids {left}")
        print(f"ok: partition {where}: '{lines[0]}' {named:.1f} s after the cut; mpirun exited 6 "
              f"{result.seconds:.1f} s after the start, once TCP gave up on recis-node3; nothing published, nothing "
              "left, the cut-off ranks stopped")
        cluster("up", str(NODES))  # a fresh cluster: recis-node3 still holds the cut-off job's daemon

    # A rank whose work stops (rank 2 on recis-node2 stalls after its first file), with --resume: exit 6 from
    # every node, the journal kept and adopted by the next run.
    parent = fresh(args.work, "stuck")
    out = os.path.join(parent, "export")
    report = os.path.join(args.work, "stuck-report.json")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--resume", "--report", report,
                                  "--stall-timeout", str(STALL_TIMEOUT), "--debug-fail-at", "file@2:stall"])
    lines = stall_lines(result.stderr)
    with open(report) as f:
        record = json.load(f)
    check(record["status"] == "stalled" and record["exit_code"] == 6 and record["published"] is False and
          any("no progress for 5.00 s from rank 2 (recis-node2)" in e for e in record["errors"]),
          f"--report of a stalled run: {record}")
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


def put_on_node1(source, name):
    """Copies `source` into recis-node1's local storage, which no other node sees."""
    cluster("exec", "recis-node1", "cp", source, os.path.join(LOCAL, name))
    return os.path.join(LOCAL, name)


def case_node_local(args):
    parent = fresh(args.work, "node_local")
    vocab = os.path.join(parent, "vocab.txt")
    with open(vocab, "w") as f:
        f.write("a\nb\nc\n")
    samples = os.path.join(parent, "samples.safetensors")
    user, item = struct.pack("<48f", *range(48)), struct.pack("<72f", *range(72))
    head = json.dumps({"user_columns": {"dtype": "F32", "shape": [3, 16], "data_offsets": [0, len(user)]},
                       "item_columns": {"dtype": "F32", "shape": [3, 24],
                                        "data_offsets": [len(user), len(user) + len(item)]}}).encode()
    with open(samples, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + user + item)
    local_vocab, local_samples = put_on_node1(vocab, "vocab.txt"), put_on_node1(samples, "samples.safetensors")
    local_report = os.path.join(LOCAL, "report.json")
    os.unlink(vocab)
    os.unlink(samples)

    # what only rank 0 reads or writes may be on its node alone
    out = os.path.join(parent, "export")
    dense = ["--filter-optimizer", "--fg", FG, "--mc", MC, "--dense-model", os.path.join(args.fixture, "dense_arch.pt"),
             "--outputs", "ctr,cvr"]
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", out, "--asset-files", local_vocab,
                                  "--sample-inputs", local_samples, "--report", local_report] + dense)
    expect_ok(result, "--report, --asset-files and --sample-inputs on rank 0's node alone")
    with open(os.path.join(out, "vocab.txt")) as f:
        check(f.read() == "a\nb\nc\n", "the asset from rank 0's node was not shipped")
    with open(os.path.join(out, "fx_user_model", "sample_io.safetensors"), "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        check(json.loads(f.read(size))["input.user_columns"]["shape"] == [3, 16], "the sample inputs were not used")
    report = json.loads(cluster("exec", "recis-node1", "cat", local_report))
    check(report["status"] == "ok" and report["published"] is True, f"the report on rank 0's node: {report}")
    print(f"ok: --report, --asset-files and --sample-inputs on rank 0's node alone: exit 0 ({result.seconds:.1f} s)")

    # a --config every rank reads, on rank 0's node alone: refused, naming the nodes without it
    config = os.path.join(parent, "job.json")
    with open(config, "w") as f:
        json.dump({"filter-optimizer": True}, f)
    local_config = put_on_node1(config, "job.json")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", os.path.join(parent, "by_config"),
                                  "--config", local_config])
    errors = [line for line in result.stderr.splitlines() if line.startswith("recis-convert: error:")]
    check(result.returncode == 2 and errors and all("where rank 0 accepted it" in e for e in errors) and
          any("on recis-node2" in e or "on recis-node3" in e for e in errors),
          f"a --config on rank 0's node alone: exit {result.returncode}\n{result.stderr[-2000:]}")
    print(f"ok: a --config on rank 0's node alone: exit 2, '{errors[0]}'")

    # an export directory on rank 0's node alone: refused before any byte is written, naming the other nodes
    local_out = os.path.join(LOCAL, "export")
    result = across(args.binary, ["--ckpt-dir", args.fixture, "--export-dir", local_out])
    errors = [line for line in result.stderr.splitlines() if line.startswith("recis-convert: error:")]
    check(result.returncode == 4 and len(errors) == 1 and
          "ranks 2, 3 (recis-node2); ranks 4, 5 (recis-node3) cannot reach it" in errors[0],
          f"an export directory on rank 0's node alone: exit {result.returncode}\n{result.stderr[-2000:]}")
    left = sorted(cluster("exec", "recis-node1", "ls", "-A", LOCAL).split())
    check(left == ["job.json", "report.json", "samples.safetensors", "vocab.txt"],
          f"rank 0's node holds {left} after the refused export")
    print(f"ok: an export directory on rank 0's node alone: exit 4, '{errors[0]}'; nothing left there")


CASES = {"across": case_across, "node_loss": case_node_loss, "stall": case_stall, "node_local": case_node_local}


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
