#!/usr/bin/python3
"""The documented hourly-delta / nightly-full crontab (docs/row-features.md, "Deltas"), run as cron runs it: the lines
are read from that page itself (so the two cannot drift), their paths pointed at a test tree, and each is run by /bin/sh with cron's environment (no TTY,
stdin /dev/null, PATH=/usr/bin:/bin, HOME, LOGNAME, SHELL=/bin/sh).

    cron_test.py cron --binary BIN --fixture FIXTURES/training --work DIR

- the nightly line publishes a full export, verifies it and calls the serving system's reload once;
- an hourly line before any new checkpoint exits 2, publishes nothing, and never calls apply-delta;
- after a new checkpoint, the hourly line publishes a delta that verifies and calls apply-delta;
- two nightly invocations that overlap: the second exits 4 at once ("another recis-convert run is exporting here"),
  the first publishes; reload runs once; the export verifies and nothing is half-published.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, fresh, run_cases  # noqa: E402

CRON_ENV = {"PATH": "/usr/bin:/bin", "SHELL": "/bin/sh", "LOGNAME": "root", "HOME": "/root",
            # tests only: this CI runs as root, where mpirun wants to be told, and on 2 cores
            "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_btl_vader_single_copy_mechanism": "none"}
# the sanitizer build's settings are the harness's, not cron's: kept (CI's ASan pass turns leak checks off for MPI)
CRON_ENV.update({k: v for k, v in os.environ.items() if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")})


def crontab_from_readme():
    """{"hourly": command, "nightly": command}: the crontab block after 'From cron, a delta every hour'."""
    with open(os.path.join(REPO_ROOT, "docs", "row-features.md")) as f:
        text = f.read()
    block = text[text.index("From cron, a delta every hour"):]
    block = block[block.index("```sh") + 5:block.index("```", block.index("```sh") + 5)]
    entries, current = [], ""
    for line in block.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            entries.append(current)
            current = ""
    commands = {}
    for entry in entries:
        fields = entry.split(None, 5)  # minute hour day month weekday command
        command = fields[5].replace("\\%", "%")  # cron's escape for %
        commands["hourly" if fields[1] == "*" else "nightly"] = command
    check(sorted(commands) == ["hourly", "nightly"], f"the documented crontab block has {entries}")
    return commands


def run_cron_line(command, log, wait=True):
    """/bin/sh -c COMMAND as cron starts it: its own session, no TTY, stdin /dev/null, cron's environment."""
    out = open(log, "w")
    process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, env=CRON_ENV, start_new_session=True)
    if wait:
        process.wait(timeout=600)
    return process


def case_cron(args):
    work = fresh(args.work, "cron")
    # the test tree: /opt/recis-convert (a directory whose build/ is the binary's), /data/out (a training run whose
    # `checkpoint` lists up to step 150 for now), /data/serve, and the serving system's two commands
    tool = os.path.join(work, "opt")
    os.makedirs(os.path.join(tool, "build"))
    for name in ("recis-convert", "librecis_dense.so"):
        os.symlink(os.path.join(os.path.dirname(os.path.abspath(args.binary)), name), os.path.join(tool, "build", name))
    data_out = os.path.join(work, "out")
    shutil.copytree(args.fixture, data_out)
    with open(os.path.join(data_out, "checkpoint"), "w") as f:
        f.write("ckpt_100\nckpt_150\n")
    serve = os.path.join(work, "serve")
    os.makedirs(serve)
    calls = os.path.join(work, "serving-calls")
    bin_dir = os.path.join(work, "serving-bin")
    os.makedirs(bin_dir)
    for name in ("reload", "apply-delta"):
        with open(os.path.join(bin_dir, name), "w") as f:
            f.write(f"#!/bin/sh\necho \"{name} $1\" >> {calls}\n")
        os.chmod(os.path.join(bin_dir, name), 0o755)

    def called():
        return open(calls).read().splitlines() if os.path.exists(calls) else []

    commands = {}
    for when, command in crontab_from_readme().items():
        command = command.replace("/opt/recis-convert", tool).replace("/opt/serving/bin", bin_dir)
        command = command.replace("/data/out", data_out).replace("/data/serve", serve)
        commands[when] = command.replace("mpirun -np 4", "mpirun -np 2")
    full = os.path.join(serve, "full-latest")

    # the nightly full export
    nightly = run_cron_line(commands["nightly"], os.path.join(work, "nightly.log"))
    check(nightly.returncode == 0, f"nightly: exit {nightly.returncode}: {open(os.path.join(work, 'nightly.log')).read()}")
    check(called() == [f"reload {full}"], f"the serving system was told {called()}")
    print(f"ok: nightly: published {full}, verified, reload called")

    # an hour later, no new checkpoint: exit 2, nothing published, apply-delta not called
    hourly = run_cron_line(commands["hourly"], os.path.join(work, "hourly1.log"))
    said = open(os.path.join(work, "hourly1.log")).read()
    check(hourly.returncode == 2, f"hourly without a new checkpoint: exit {hourly.returncode}: {said}")
    check(not [n for n in os.listdir(serve) if n.startswith("delta-")], f"a delta was published: {os.listdir(serve)}")
    check(len(called()) == 1, f"the serving system was told {called()}")
    print(f"ok: hourly, no new checkpoint: exit 2, nothing published: {[l for l in said.splitlines() if 'error' in l]}")

    # a new checkpoint: the hourly delta is published, verified and applied
    with open(os.path.join(data_out, "checkpoint"), "a") as f:
        f.write("ckpt_200\n")
    hourly = run_cron_line(commands["hourly"], os.path.join(work, "hourly2.log"))
    check(hourly.returncode == 0, f"hourly: exit {hourly.returncode}: {open(os.path.join(work, 'hourly2.log')).read()}")
    deltas = [n for n in os.listdir(serve) if n.startswith("delta-")]
    check(len(deltas) == 1 and called()[-1] == f"apply-delta {os.path.join(serve, deltas[0])}",
          f"delta {deltas}, serving calls {called()}")
    print(f"ok: hourly after ckpt_200: {deltas[0]} published, verified, apply-delta called")

    # two nightly invocations that overlap: the first pauses mid-stream (test flag), the second starts meanwhile
    slow = commands["nightly"].replace(" --overwrite ", " --overwrite --debug-fail-at stream@0:pause ", 1)
    check(slow != commands["nightly"], "the nightly line has no --overwrite to anchor the test flag")
    first = run_cron_line(slow, os.path.join(work, "overlap1.log"), wait=False)
    log1 = os.path.join(work, "overlap1.log")
    deadline = time.monotonic() + 120
    while "[test] fault at stream" not in open(log1).read():
        check(time.monotonic() < deadline and first.poll() is None, f"the first run never paused: {open(log1).read()}")
        time.sleep(0.2)
    second = run_cron_line(commands["nightly"], os.path.join(work, "overlap2.log"))
    first.wait(timeout=600)
    said2 = open(os.path.join(work, "overlap2.log")).read()
    check(second.returncode == 4 and "another recis-convert run is exporting here" in said2,
          f"the overlapping run: exit {second.returncode}: {said2}")
    check(first.returncode == 0, f"the first run: exit {first.returncode}: {open(log1).read()}")
    check(called().count(f"reload {full}") == 2, f"reload calls {called()}")  # the first nightly and this one
    leftovers = [n for n in os.listdir(serve) if n.startswith(".")]
    check(not leftovers, f"left beside the exports: {leftovers}")
    verified = subprocess.run([args.binary, "verify", full], capture_output=True, text=True)
    check(verified.returncode == 0, f"verify {full}: {verified.stderr}")
    refusal = [line for line in said2.splitlines() if "another recis-convert run" in line][0]
    print(f"ok: overlapping nightly runs: the second exits 4 ({refusal!r}); the first published, reload once more")


CASES = {"cron": case_cron}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
