#!/usr/bin/python3
"""The DCP source's benchmark: a generated PyTorch Distributed Checkpoint of at least 1 GiB, converted by torch 2.6's
own `dcp_to_torch_save` (the whole checkpoint built in one process, then saved) and by recis-convert
`--source dcp` at np 2 (every table into RecIS's export layout, checksummed, fsynced), timed alternately in one run.

    bench/dcp.py --dir /var/tmp/recis-bench [--binary build/recis-convert] [--rows-scale 10000] [--runs 3]
                 [--world 4]

Generates (once per scale, reused) DIR/dcp-<scale>/model.ckpt-100 with tests/integration/dcp_tools.py in the
Debian 13 root (scripts/torch2-root.sh; exit 77 when it has not been built): at --rows-scale 10000 its tables
hold 1.1 GiB (user_id 10M x 16 float32 row-wise, item_id 7.8M x 8 float32 uneven, cate 5M x 12 float16
column-wise, seq_item 3M x 8 bfloat16 table-wise, zch_user 2M x 8 float32) over --world ranks' files. Prints each
variant's median and best wall time and its peak RSS (torch: the converting process's own ru_maxrss; recis-convert:
each rank's, from /usr/bin/time around it, as bench/e2e.py measures), and the ratio of the medians.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH2 = os.path.join(ROOT, "scripts", "torch2-root.sh")
TOOLS = os.path.join(ROOT, "tests", "integration", "dcp_tools.py")
sys.path.insert(0, HERE)
from e2e import run_converter  # noqa: E402

# Run inside the root: torch's own conversion, timed and measured by the process itself.
TORCH_CONVERT = """
import resource, sys, time
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
start = time.monotonic()
dcp_to_torch_save(sys.argv[1], sys.argv[2])
print(time.monotonic() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def torch2(args, **kw):
    env = dict(os.environ, RECIS_TORCH2_BIND=kw.pop("bind"))
    return subprocess.run([TORCH2, "python"] + args, env=env, check=True, stdout=subprocess.PIPE, text=True, **kw)


def checkpoint(work, scale, world):
    ckpt = os.path.join(work, f"dcp-{scale}")
    dcp_dir = os.path.join(ckpt, "model.ckpt-100", "model")
    if not os.path.exists(os.path.join(dcp_dir, ".metadata")):
        shutil.rmtree(ckpt, ignore_errors=True)
        print(f"dcp: generating {ckpt} (--rows-scale {scale}, {world} ranks)", flush=True)
        torch2([TOOLS, "make", ckpt, "--world", str(world), "--steps", "100", "--rows-scale", str(scale)], bind=work,
               stderr=subprocess.DEVNULL)
    return dcp_dir


def bytes_of(dcp_dir):
    return sum(os.path.getsize(os.path.join(dcp_dir, f)) for f in os.listdir(dcp_dir))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="/var/tmp/recis-bench")
    p.add_argument("--binary", default=os.path.join(ROOT, "build", "recis-convert"))
    p.add_argument("--rows-scale", type=int, default=10000)
    p.add_argument("--world", type=int, default=4)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    if subprocess.run([TORCH2, "path"], stdout=subprocess.DEVNULL).returncode != 0:
        print("dcp: no Debian 13 root with torch 2.6 (scripts/torch2-root.sh create): skipped")
        return 77
    os.makedirs(args.dir, exist_ok=True)
    dcp_dir = checkpoint(args.dir, args.rows_scale, args.world)
    size = bytes_of(dcp_dir)
    print(f"dcp: {dcp_dir}: {size / 2**30:.2f} GiB, {args.runs} runs", flush=True)
    torch_out = os.path.join(args.dir, "dcp-torch-save.pt")
    export = os.path.join(args.dir, "dcp-export")
    rss_dir = os.path.join(args.dir, "rss")
    os.makedirs(rss_dir, exist_ok=True)

    def torch_save():
        got = torch2(["-c", TORCH_CONVERT, dcp_dir, torch_out], bind=args.dir).stdout.split()
        os.remove(torch_out)
        return float(got[0]), [int(got[1]) / 1024]

    def ours():
        shutil.rmtree(export, ignore_errors=True)
        return run_converter(args.binary, 2, dcp_dir, export, rss_dir, ["--source", "dcp"])

    variants = [("torch 2.6 dcp_to_torch_save", torch_save), ("recis-convert --source dcp np=2", ours)]
    seconds = {name: [] for name, _ in variants}
    rss = {name: [] for name, _ in variants}
    for run in range(args.runs):
        for name, fn in variants:  # alternately, so both see the same page cache and machine
            subprocess.run(["sync"])
            took, peak = fn()
            seconds[name].append(took)
            rss[name].append(max(peak))
        print(f"dcp: run {run + 1}/{args.runs} done", flush=True)
    shutil.rmtree(export, ignore_errors=True)
    print()
    print(f"{'variant':40} {'median s':>9} {'best s':>8} {'GiB/s':>7}  peak RSS per process (MiB)")
    for name, _ in variants:
        median = statistics.median(seconds[name])
        print(f"{name:40} {median:9.2f} {min(seconds[name]):8.2f} {size / 2**30 / median:7.2f}  {max(rss[name]):.0f}")
    ratio = statistics.median(seconds[variants[1][0]]) / statistics.median(seconds[variants[0][0]])
    print(f"\nrecis-convert / torch: {ratio:.2f}x the time, "
          f"{max(rss[variants[1][0]]) / max(rss[variants[0][0]]):.3f}x the peak RSS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
