#!/usr/bin/python3
"""How cost grows with input size: times recis-convert (copy and --filter-optimizer, np=1) and cp on checkpoints of
several sizes, with peak RSS, to show time growing linearly while RSS stays flat (bounded by --buffer-mib).

    bench/scaling.py --dir DIR [--sizes-mib 256,1024,4096] [--runs 3] [--json out.json]

Checkpoints are generated once per size in DIR/size-<MiB> (scripts/make_fixture.py, 4 ranks x 16 writers).
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
from e2e import KIB_PER_SCALE_UNIT, ROOT, data_files, run_converter, timed  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "recis-convert"))
    parser.add_argument("--dir", required=True)
    parser.add_argument("--sizes-mib", default="256,1024,4096")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.makedirs(os.path.join(args.dir, "bin"), exist_ok=True)
    binary = shutil.copy2(args.binary, os.path.join(args.dir, "bin", "recis-convert"))
    out, rss_dir = os.path.join(args.dir, "out"), os.path.join(args.dir, "rss")
    os.makedirs(rss_dir, exist_ok=True)
    rows = []
    print(f"{'size':>9} {'variant':10} {'median s':>9} {'GiB/s':>7}  peak RSS (MiB)")
    for size in (int(s) for s in args.sizes_mib.split(",")):
        source = os.path.join(args.dir, f"size-{size}")
        if not os.path.exists(source):
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), source, "--steps", "200",
                            "--ranks", "4", "--parallel", "16", "--scale", str(max(1, round(size * 1024 / KIB_PER_SCALE_UNIT)))],
                           check=True)
        ckpt = os.path.join(source, "ckpt_200")
        files = data_files(ckpt)
        total = sum(os.path.getsize(f) for f in files)
        results = {"cp": [], "copy": [], "filter": []}
        peaks = {"copy": 0.0, "filter": 0.0}
        for _ in range(args.runs):
            for name in results:
                shutil.rmtree(out, ignore_errors=True)
                subprocess.run(["sync"])
                if name == "cp":
                    os.makedirs(out)
                    results[name].append(timed(["cp"] + files + [out]))
                    continue
                extra = ["--filter-optimizer"] if name == "filter" else []
                seconds, rss = run_converter(binary, 1, ckpt, out, rss_dir, extra)
                results[name].append(seconds)
                peaks[name] = max(peaks[name], rss[0])
        shutil.rmtree(out, ignore_errors=True)
        for name, times in results.items():
            median = statistics.median(times)
            row = {"size_mib": total / 2**20, "variant": name, "median_seconds": median, "all_seconds": times,
                   "gib_per_second": total / 2**30 / median, "peak_rss_mib": peaks.get(name)}
            rows.append(row)
            rss = f"{row['peak_rss_mib']:.0f}" if row["peak_rss_mib"] else ""
            print(f"{total / 2**20:9.0f} {name:10} {median:9.2f} {row['gib_per_second']:7.2f}  {rss}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
