#!/usr/bin/python3
"""Cost per block: times recis-convert on checkpoints with many small tables, against Python's json.load of the
same checkpoint's `index` and `tensorkey.json`, in one run, with every rank's peak RSS.

    bench/many_tables.py --dir DIR [--tables 40,400,1000,4000] [--runs 1] [--json out.json]

A checkpoint of T tables is written once to DIR/tables-<T> by scripts/make_fixture.py --tables T --ranks 64
--parallel 4 (AdamW: id, embedding and two slots per table, so 256 T blocks in 256 files; 4000 tables is a
million blocks). For each size and run it times, in turn: Python's json.load of index + tensorkey.json (the
baseline), the filtered export (--filter-optimizer), the copy, and --dry-run at np 2, then `inspect` and `verify`
(np 2) of the export. Prints seconds, the ratio to the baseline, microseconds per block, and the peak RSS of
each rank (from /usr/bin/time around every rank). No time is asserted: speed is measured, never tested. Memory
is a property: --check-rss ROOT,OTHER fails (exit 1) if rank 0 of any run peaks above ROOT MiB or another rank
above OTHER MiB (issue 13's bound is 512,160 at a million blocks).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import ROOT, mpirun_prefix, timed  # noqa: E402

PYTHON_PARSE = ("import json,sys\n"
                "for name in ('index', 'tensorkey.json'):\n"
                "    with open(sys.argv[1] + '/' + name) as f: json.load(f)\n")


def rss_of(rss_dir, ranks):
    peaks = []
    for rank in range(ranks):
        with open(os.path.join(rss_dir, f"rss.{rank}")) as f:
            peaks.append(int(f.read().split()[-1]) / 1024.0)  # KiB -> MiB
    return peaks


def under_time(binary, rss_dir, per_rank):
    """A command that runs `binary` under /usr/bin/time; per_rank: name the file by the MPI rank."""
    name = "rss.$OMPI_COMM_WORLD_RANK" if per_rank else "rss.0"
    return ["sh", "-c", f'exec /usr/bin/time -f %M -o "{rss_dir}/{name}" "$0" "$@"', binary]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "recis-convert"))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--tables", default="40,400,1000,4000", help="sizes, in tables of 256 blocks each")
    parser.add_argument("--np", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json")
    parser.add_argument("--check-rss", help="ROOT,OTHER: peak RSS bounds in MiB for rank 0 and the other ranks")
    args = parser.parse_args()
    bounds = [float(x) for x in args.check_rss.split(",")] if args.check_rss else None
    too_big = []
    os.makedirs(os.path.join(args.dir, "bin"), exist_ok=True)
    binary = shutil.copy2(args.binary, os.path.join(args.dir, "bin", "recis-convert"))
    plugin = os.path.join(os.path.dirname(args.binary), "librecis_dense.so")
    if os.path.exists(plugin):
        shutil.copy2(plugin, os.path.join(args.dir, "bin"))
    out, rss_dir = os.path.join(args.dir, "out"), os.path.join(args.dir, "rss")
    os.makedirs(rss_dir, exist_ok=True)
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")

    rows = []
    print(f"{'blocks':>8} {'variant':10} {'median s':>9} {'x python':>8} {'us/block':>8}  peak RSS per rank (MiB)",
          flush=True)
    for tables in (int(t) for t in args.tables.split(",")):
        source = os.path.join(args.dir, f"tables-{tables}")
        if not os.path.exists(source):
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), source, "--steps",
                            "200", "--tables", str(tables), "--ranks", "64", "--parallel", "4"], check=True)
        ckpt = os.path.join(source, "ckpt_200")
        with open(os.path.join(ckpt, "index")) as f:
            blocks = len(json.load(f)["block_index"])
        mpi = mpirun_prefix(args.np)
        convert = mpi + under_time(binary, rss_dir, True) + ["--ckpt-dir", ckpt, "--quiet"]
        variants = [
            ("python", None, ["/usr/bin/python3", "-c", PYTHON_PARSE, ckpt]),
            ("filter", args.np, convert + ["--export-dir", out, "--filter-optimizer"]),
            ("copy", args.np, convert + ["--export-dir", out]),
            ("dry-run", args.np, convert + ["--export-dir", out, "--filter-optimizer", "--dry-run"]),
            ("inspect", 1, under_time(binary, rss_dir, False) + ["inspect", ckpt]),
            ("verify", args.np, mpi + under_time(binary, rss_dir, True) + ["verify", out, "--quiet"]),
        ]
        times = {name: [] for name, _, _ in variants}
        peaks = {name: [] for name, _, _ in variants}
        for _ in range(args.runs):
            for name, ranks, command in variants:
                if name in ("filter", "copy", "dry-run"):
                    shutil.rmtree(out, ignore_errors=True)
                if name == "verify":  # verify the last real export (copy)
                    subprocess.run(mpi + [binary, "--ckpt-dir", ckpt, "--export-dir", out, "--overwrite", "--quiet"],
                                   check=True, env=env)
                subprocess.run(["sync"])
                times[name].append(timed(command, env))
                if ranks:
                    peaks[name] = [max(a, b) for a, b in zip(peaks[name], rss_of(rss_dir, ranks))] \
                        if peaks[name] else rss_of(rss_dir, ranks)
        shutil.rmtree(out, ignore_errors=True)
        python = statistics.median(times["python"])
        for name, _, _ in variants:
            median = statistics.median(times[name])
            rss = " ".join(f"{p:.0f}" for p in peaks[name])
            print(f"{blocks:>8} {name:10} {median:9.3f} {median / python:8.2f} {median / blocks * 1e6:8.2f}  {rss}",
                  flush=True)
            rows.append({"blocks": blocks, "tables": tables, "variant": name, "median_seconds": median,
                         "ratio_to_python": median / python, "us_per_block": median / blocks * 1e6,
                         "peak_rss_mib": peaks[name]})
            for rank, peak in enumerate(peaks[name]):
                if bounds and peak > bounds[0 if rank == 0 else 1]:
                    too_big.append(f"{blocks} blocks, {name}: rank {rank} peaked at {peak:.0f} MiB, "
                                   f"above {bounds[0 if rank == 0 else 1]:.0f} MiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    # The cost of one more block, between consecutive sizes: flat if the tool scales with the blocks (mpirun's
    # start-up and other fixed costs cancel out).
    sizes = sorted({r["blocks"] for r in rows})
    if len(sizes) > 1:
        print("\nmarginal microseconds per block between sizes:")
        for name in dict.fromkeys(r["variant"] for r in rows):
            at = {r["blocks"]: r["median_seconds"] for r in rows if r["variant"] == name}
            steps = [f"{(at[b] - at[a]) / (b - a) * 1e6:6.2f}" for a, b in zip(sizes, sizes[1:])]
            print(f"  {name:10} " + "  ".join(steps))
    for line in too_big:
        print("many_tables: " + line, file=sys.stderr)
    sys.exit(1 if too_big else 0)


if __name__ == "__main__":
    main()
