#!/usr/bin/python3
"""Integration tests of the versioned serving root (--publish-root), on the training run of delta_test.py
(make_fixture.py --training-run: ckpt_100, ckpt_150 and ckpt_200).

    serving_root_test.py --binary BIN --fixture OUTPUT_DIR --work DIR CASE [--np N]

Cases:
  publish     three nightly runs with --keep 2: each version is ROOT/<ckpt id>, `current` names the newest step
              (an older checkpoint published later does not turn it back), versions.json lists the versions with
              steps and sizes that match the files, the oldest goes, a directory that is not this tool's stays;
              --version-name, an existing version (exit 4 unless --overwrite), the refused option combinations
              (exit 2), a `current` that is not a symlink (exit 4); a reader of ROOT/current never misses a file
  concurrent  two publishers into one root at once: of two versions, both are listed and `current` is the newer;
              of the same version, one wins and the other is exit 4; `current` is a complete export every time
"""
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import check, expect_failure, expect_success, fresh, mpirun, run_cases  # noqa: E402


def publish(args, root, ckpt, extra=(), np_=None):
    return mpirun(args.binary, np_ or args.np, ["--ckpt-dir", os.path.join(args.fixture, ckpt), "--publish-root",
                                                root, "--filter-optimizer", "--quiet"] + list(extra))


def versions(root):
    with open(os.path.join(root, "versions.json")) as f:
        return json.load(f)


def current(root):
    return os.readlink(os.path.join(root, "current"))


def size_of(directory):
    files = total = 0
    for base, _, names in os.walk(directory):
        for name in names:
            files += 1
            total += os.path.getsize(os.path.join(base, name))
    return files, total


def check_listed(root, expected):
    """versions.json lists `expected` (names, in publish order), each with its step and its true size."""
    listed = versions(root)
    check([v["version"] for v in listed["versions"]] == expected, f"versions.json lists {listed['versions']}")
    check(listed["current"] == current(root), f"versions.json says current is {listed['current']}, the link "
          f"{current(root)}")
    for v in listed["versions"]:
        step = int(v["version"][5:]) if v["version"].startswith("ckpt_") else 200  # --version-name: ckpt_200
        check(v["step"] == step, f"{v['version']}: step {v['step']}, expected {step}")
        files, total = size_of(os.path.join(root, v["version"]))
        check((v["files"], v["bytes"]) == (files, total), f"{v['version']}: listed {v['files']} files, "
              f"{v['bytes']} bytes; on disk {files}, {total}")


class CurrentReader(threading.Thread):
    """Reads ROOT/current/manifest.json in a loop; counts the times it was missing once a version existed."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.stop, self.reads, self.misses = root, False, 0, 0

    def run(self):
        link = os.path.join(self.root, "current")
        while not self.stop:
            if not os.path.lexists(link):
                continue
            try:
                with open(os.path.join(link, "manifest.json")) as f:
                    json.load(f)
                self.reads += 1
            except (OSError, ValueError):
                self.misses += 1


def case_publish(args):
    root = os.path.join(fresh(args.work, "publish"), "serve")  # created by the first run
    reader = CurrentReader(root)
    reader.start()
    for ckpt in ("ckpt_100", "ckpt_200"):
        expect_success(publish(args, root, ckpt, ["--keep", "2"]), f"publish {ckpt}")
        check(current(root) == ckpt, f"after {ckpt}: current -> {current(root)}")
    os.makedirs(os.path.join(root, "not-ours"))  # another tool's directory in the root: never removed
    # an older checkpoint published later is kept, but current stays at the newest step; --keep 2 drops ckpt_100
    expect_success(publish(args, root, "ckpt_150", ["--keep", "2"]), "publish ckpt_150")
    reader.stop = True
    reader.join()
    check(reader.reads > 0 and reader.misses == 0, f"a reader of current missed {reader.misses} of "
          f"{reader.reads + reader.misses} reads")
    check(current(root) == "ckpt_200", f"current -> {current(root)} after publishing an older checkpoint")
    check(sorted(os.listdir(root)) == [".recis-lock", "ckpt_150", "ckpt_200", "current", "not-ours", "versions.json"],
          f"the root holds {sorted(os.listdir(root))}")
    check_listed(root, ["ckpt_200", "ckpt_150"])
    expect_success(mpirun(args.binary, args.np, ["verify", os.path.join(root, "current")]), "verify current")

    # an existing version: exit 4, untouched; with --overwrite it is replaced and published again
    before = os.stat(os.path.join(root, "ckpt_200", "manifest.json")).st_mtime_ns
    expect_failure(publish(args, root, "ckpt_200"), 4, "already exists", "publish ckpt_200 again")
    check(os.stat(os.path.join(root, "ckpt_200", "manifest.json")).st_mtime_ns == before, "ckpt_200 was touched")
    expect_success(publish(args, root, "ckpt_200", ["--overwrite"]), "publish ckpt_200 again with --overwrite")
    check_listed(root, ["ckpt_150", "ckpt_200"])
    # --version-name: the same checkpoint under a name of the user's; a newer publish at an equal step wins
    expect_success(publish(args, root, "ckpt_200", ["--version-name", "nightly-2"]), "--version-name")
    check(current(root) == "nightly-2", f"current -> {current(root)} after nightly-2")
    check_listed(root, ["ckpt_150", "ckpt_200", "nightly-2"])

    # refused combinations: exit 2, one line, nothing written
    parent = fresh(args.work, "publish_refused")
    refused = [(["--publish-root", parent + "/r", "--export-dir", parent + "/e"], "exclude each other"),
               (["--export-dir", parent + "/e", "--keep", "2"], "go with --publish-root"),
               (["--export-dir", parent + "/e", "--version-name", "x"], "go with --publish-root"),
               (["--publish-root", parent + "/r", "--delta-since", "100"], "a delta goes to --export-dir"),
               (["--publish-root", parent + "/r", "--version-name", "current"], "cannot name a version"),
               (["--publish-root", parent + "/r", "--keep", "0"], "--keep")]
    for extra, text in refused:
        result = mpirun(args.binary, args.np, ["--ckpt-dir", os.path.join(args.fixture, "ckpt_200")] + extra)
        check(result.returncode == 2 and text in result.stderr, f"{extra}: exit {result.returncode}\n{result.stderr}")
        check(os.listdir(parent) == [], f"{extra}: left {os.listdir(parent)}")
    # a `current` that is not this tool's symlink: the version is published, but current is not replaced: exit 4
    odd = os.path.join(fresh(args.work, "publish_odd"), "serve")
    os.makedirs(os.path.join(odd, "current"))
    expect_failure(publish(args, odd, "ckpt_100"), 4, "not a symlink", "a current directory")
    check(os.path.isdir(os.path.join(odd, "current")) and not os.path.islink(os.path.join(odd, "current")),
          "the current directory was replaced")
    print("ok: three versions with --keep 2, current at the newest step, versions.json true to the files, "
          "a foreign directory kept, --overwrite, --version-name, refusals, a reader never missed current")


def case_concurrent(args):
    def start(root, ckpt, extra=()):
        command = ["mpirun", "--oversubscribe", "-np", "1"]
        if os.geteuid() == 0:
            command.append("--allow-run-as-root")
        command += [args.binary, "--ckpt-dir", os.path.join(args.fixture, ckpt), "--publish-root", root,
                    "--filter-optimizer", "--quiet"] + list(extra)
        env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    for attempt in range(3):
        # two versions at once: both published and listed (no update lost), current the newer step
        root = os.path.join(fresh(args.work, f"concurrent_{attempt}"), "serve")
        runs = [start(root, "ckpt_100"), start(root, "ckpt_200")]
        for run in runs:
            _, err = run.communicate(timeout=600)
            check(run.returncode == 0, f"attempt {attempt}: a publisher failed ({run.returncode}):\n{err}")
        check(sorted(v["version"] for v in versions(root)["versions"]) == ["ckpt_100", "ckpt_200"],
              f"attempt {attempt}: versions.json lists {versions(root)['versions']}")
        check(current(root) == "ckpt_200", f"attempt {attempt}: current -> {current(root)}")
        expect_success(mpirun(args.binary, 1, ["verify", os.path.join(root, "current")]), "verify current")
        # the same version twice at once: one wins, the other is exit 4 and publishes nothing
        runs = [start(root, "ckpt_150"), start(root, "ckpt_150")]
        codes = sorted(run.wait(timeout=600) for run in runs)
        check(codes == [0, 4], f"attempt {attempt}: the two publishers of ckpt_150 exited {codes}")
        check(sorted(v["version"] for v in versions(root)["versions"]) == ["ckpt_100", "ckpt_150", "ckpt_200"],
              f"attempt {attempt}: versions.json lists {versions(root)['versions']}")
        check(current(root) == "ckpt_200", f"attempt {attempt}: current -> {current(root)}")
        check(not [n for n in os.listdir(root) if n.startswith(".") and n != ".recis-lock"],
              f"attempt {attempt}: left {os.listdir(root)}")
        expect_success(mpirun(args.binary, 1, ["verify", os.path.join(root, "ckpt_150")]), "verify ckpt_150")
    print("ok: concurrent publishers: two versions both listed and current the newer; one version, one winner "
          "and exit 4 for the other; three times")


CASES = {"publish": case_publish, "concurrent": case_concurrent}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
