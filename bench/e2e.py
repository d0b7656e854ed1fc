#!/usr/bin/python3
"""End-to-end benchmark: recis-convert against `cp` of the same data files, timed alternately in one run.

    bench/e2e.py --dir /var/tmp/recis-bench [--size-gib 2] [--runs 3] [--hdf5] [--quantize] [--rows]
                 [--deltas [--delta-rows narrow|wide] [--delta-changes UPDATED,NEW]] [--watchdog]
                 [--before OLD_BINARY] [--bind-to core|none]
                 [--prime | --settle SECONDS] [--only TEXT] [--json F]

Generates (once per size, reused) a checkpoint with scripts/make_fixture.py in DIR/source-<scale>: 64 data files
of unequal size, AdamW slots (filtering drops about 58% of the bytes). Then, for each run, times in turn: `cp` of
the data files into a fresh directory (the baseline); `cp` followed by `sync` (the disk's limit for a durable
copy: recis-convert fsyncs every file unless --no-fsync); the converter's start-up (an export of a checkpoint of a
few KiB at np 1: mpirun, MPI_Init, MPI_Finalize; Open MPI settings come from the environment, e.g.
OMPI_MCA_pml=ob1, and are printed); recis-convert copy mode and --filter-optimizer at np 1
and 2, with and without --no-fsync; --balance size; optionally --format hdf5 and int4 / fp16 embeddings
(--quantize); the row-level exports (--rows, on a second checkpoint whose every table has a step_filter slot:
eviction keeping about half the rows, --reshard 7, and both, against the filtered export of that checkpoint);
deltas (--deltas, on a training run whose second checkpoint changed 5% of the rows: the delta since the first
and the merge of the first's export with it, against the filtered export of the second, in wall time and in the
run record's in-process time, since mpirun's start-up is most of a small delta's wall time; --delta-rows wide
uses two float tables of dim 64 and 128 instead of the default checkpoint's dim 4-16 tables); the stall watchdog's
cost (--watchdog: filter and HDF5 collective at np 2 with the default --stall-timeout against --stall-timeout 0, in
wall time and in the run record's in-process time; with --before, also the old build at np 2); and a
load-and-resave filter in
Python/numpy (the peer a user would otherwise run); with --before, another build's copy and filter at np 1 (a
change's before and after, in one run). Prints medians and the best runs, GiB/s, the ratios to cp and to cp + sync, and
the peak RSS of each rank (from /usr/bin/time run around every rank).
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
KIB_PER_SCALE_UNIT = 111.3  # make_fixture.py: data-file KiB per --scale unit (10000 -> 1.06 GiB)
STARTUP = "start-up np=1 (tiny export)"  # the variant that times the converter's fixed cost


def data_files(ckpt):
    return sorted(os.path.join(ckpt, n) for n in os.listdir(ckpt) if n.endswith(".safetensors"))


def timed(command, env=None):
    start = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"e2e: {' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed


def mpirun_prefix(np):
    prefix = ["mpirun", "--oversubscribe", "-np", str(np)]
    if os.geteuid() == 0:
        prefix.append("--allow-run-as-root")
    return prefix


def run_converter(binary, np, ckpt, out, rss_dir, extra):
    # /usr/bin/time around each rank (not around mpirun) gives the peak RSS of every rank.
    wrapper = ["sh", "-c", f'exec /usr/bin/time -f %M -o "{rss_dir}/rss.$OMPI_COMM_WORLD_RANK" "$0" "$@"', binary]
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
    seconds = timed(mpirun_prefix(np) + wrapper + ["--ckpt-dir", ckpt, "--export-dir", out, "--quiet"] + extra, env)
    rss = []
    for rank in range(np):
        with open(os.path.join(rss_dir, f"rss.{rank}")) as f:
            rss.append(int(f.read().split()[-1]) / 1024.0)  # KiB -> MiB
    return seconds, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "recis-convert"))
    parser.add_argument("--dir", required=True, help="work directory (its filesystem is what gets measured)")
    parser.add_argument("--size-gib", type=float, default=2.0, help="checkpoint size to generate (default 2)")
    parser.add_argument("--scale", type=int, help="fixture scale instead of --size-gib (10000 -> about 1.06 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--hdf5", action="store_true", help="also time --format hdf5")
    parser.add_argument("--quantize", action="store_true",
                        help="also time the filtered export at np 2 with int4 and fp16 embeddings, and print their "
                             "ratio to the unquantized one")
    parser.add_argument("--rows", action="store_true",
                        help="also time, at np 2, eviction that keeps about half the rows (--evict-older-than 100 of "
                             "200 steps), --reshard 7 and both, and print their ratio to the filtered export")
    parser.add_argument("--deltas", action="store_true",
                        help="also time, at np 2, on one training run whose second checkpoint changed 5%% of the rows "
                             "(4%% updated, 1%% new), the filtered export, the delta since the first checkpoint, and "
                             "the merge of the first's export with that delta, with their ratios to the filtered export")
    parser.add_argument("--delta-rows", choices=("narrow", "wide"), default="narrow",
                        help="--deltas: the default checkpoint's tables (dim 4-16), or float tables of dim 64 and 128")
    parser.add_argument("--delta-changes", metavar="UPDATED,NEW", default="0.04,0.01",
                        help="--deltas: the shares of each part's rows the second checkpoint updates and adds, "
                             "default 0.04,0.01 (the usual delta; 0.9,0.3 is a delta larger than its base's parts' "
                             "joins hold in memory)")
    parser.add_argument("--split", action="store_true",
                        help="also time, at np 2, a checkpoint of the same size where one file holds 80%% of the "
                             "bytes, in whole files (--chunk-mib 0) and in pieces (the default), copy and filter; "
                             "prints the in-process times and the largest rank's bytes over the mean")
    parser.add_argument("--before", metavar="BINARY",
                        help="also time this build (e.g. of the commit before a change) at np 1, as \"before: ...\", "
                             "alternating with the rest in the same run")
    parser.add_argument("--settle", type=float, default=0, metavar="SECONDS",
                        help="wait this long before each timed variant, so that every variant starts from the same "
                             "free memory (see below; 6 is enough on this VM)")
    parser.add_argument("--prime", action="store_true",
                        help="before each timed variant, copy the data files into DIR and remove them: every variant "
                             "then writes into memory freed a moment before (see --settle)")
    parser.add_argument("--bind-to", choices=("core", "none"),
                        help="mpirun's binding of the converter's ranks (default: mpirun's, one core per rank; none "
                             "leaves a rank the second CPU its hashing thread uses)")
    parser.add_argument("--watchdog", action="store_true",
                        help="also time np 2 with the stall watchdog (default --stall-timeout) against without")
    parser.add_argument("--only", help="time only the variants whose name contains this (and cp, the baseline)")
    args = parser.parse_args()

    if args.bind_to:  # mpirun --bind-to, for every mpirun below (they inherit this environment)
        os.environ["OMPI_MCA_hwloc_base_binding_policy"] = args.bind_to
    if args.scale is None:
        args.scale = max(1, round(args.size_gib * 2**20 / KIB_PER_SCALE_UNIT))
    source = os.path.join(args.dir, f"source-{args.scale}")
    if not os.path.exists(source):
        print(f"e2e: generating a checkpoint at scale {args.scale} in {source} ...", flush=True)
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), source, "--steps", "200",
                        "--ranks", "4", "--parallel", "16", "--scale", str(args.scale)], check=True)
    ckpt = os.path.join(source, "ckpt_200")
    if args.rows:  # the same tables, each with a step_filter slot (uniform in [0, 200]: half are 100 steps old)
        rows_source = source + "-step-filter"
        if not os.path.exists(rows_source):
            print(f"e2e: generating a checkpoint at scale {args.scale} in {rows_source} ...", flush=True)
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), rows_source,
                            "--steps", "200", "--ranks", "4", "--parallel", "16", "--scale", str(args.scale),
                            "--step-filter-everywhere"], check=True)
        rows_ckpt = os.path.join(rows_source, "ckpt_200")
    if args.deltas:  # one training run: ckpt_100, then ckpt_200 with 5% of the rows changed (--delta-changes)
        updated, new = (float(x) for x in args.delta_changes.split(","))
        delta_source = source + "-training" + ("-wide" if args.delta_rows == "wide" else "") + \
            ("" if (updated, new) == (0.04, 0.01) else f"-{updated:g}-{new:g}")
        if args.delta_rows == "wide":  # AdamW: id, step_filter and three float slots; a third of the bytes each
            rows = round(args.size_gib * 2**30 / 3 / (16 + 3 * 4 * 64))
            shape = ["--optimizer", "adamw", "--table", f"user_id:F32:64:{2 * rows}", "--table",
                     f"item_id:F32:128:{rows // 2}"]
        else:
            shape = ["--scale", str(args.scale)]
        if not os.path.exists(delta_source):
            print(f"e2e: generating a training run ({args.delta_rows} rows) in {delta_source} ...", flush=True)
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), delta_source,
                            "--steps", "100,200", "--ranks", "4", "--parallel", "16", "--step-filter-everywhere",
                            "--training-run", "--updated-share", str(updated), "--new-share", str(new)] + shape,
                           check=True)
    if args.split:  # four files, one of them 80% of the bytes: a huge table, each table in a file of its own
        split_source = source + "-one-huge-file"
        rows = round(args.size_gib * 2**30 * 0.8 / (16 + 3 * 4 * 64))
        small = round(args.size_gib * 2**30 * 0.2 / 3 / 200)
        if not os.path.exists(split_source):
            print(f"e2e: generating a checkpoint with one huge file in {split_source} ...", flush=True)
            subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), split_source,
                            "--steps", "200", "--ranks", "1", "--parallel", "4", "--writer-per-table",
                            "--table", f"big:F32:64:{rows}", "--table", f"a:F32:16:{small}",
                            "--table", f"b:F16:16:{2 * small}", "--table", f"c:BF16:32:{small}"], check=True)
        split_ckpt = os.path.join(split_source, "ckpt_200")
    # The converter's fixed cost, to tell it from the copy: mpirun, MPI_Init and MPI_Finalize, and an export of a
    # checkpoint of a few KiB.
    tiny_source = os.path.join(args.dir, "source-tiny")
    if not os.path.exists(tiny_source):
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "scripts", "make_fixture.py"), tiny_source, "--steps",
                        "200", "--scale", "1"], check=True, stdout=subprocess.DEVNULL)
    tiny_ckpt = os.path.join(tiny_source, "ckpt_200")
    tiny_bytes = sum(os.path.getsize(f) for f in data_files(tiny_ckpt))
    files = data_files(ckpt)
    total = sum(os.path.getsize(f) for f in files)
    print(f"e2e: {len(files)} data files, {total / 2**30:.2f} GiB, {args.runs} runs, dir {args.dir}", flush=True)
    mca = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("OMPI_MCA_"))
    print(f"e2e: Open MPI settings from the environment: {mca or 'none'}", flush=True)

    # Time a private copy of the binary, so a rebuild during the run cannot disturb it.
    os.makedirs(os.path.join(args.dir, "bin"), exist_ok=True)
    args.binary = shutil.copy2(args.binary, os.path.join(args.dir, "bin", "recis-convert"))
    if args.before:
        args.before = shutil.copy2(args.before, os.path.join(args.dir, "bin", "recis-convert-before"))

    out = os.path.join(args.dir, "out")
    rss_dir = os.path.join(args.dir, "rss")
    os.makedirs(rss_dir, exist_ok=True)

    def cp():
        os.makedirs(out)
        return timed(["cp"] + files + [out]), []

    def cp_sync():
        os.makedirs(out)
        return timed(["sh", "-c", 'cp "$@" && sync', "sh"] + files + [out]), []

    variants = [("cp", cp), ("cp + sync", cp_sync),
                (STARTUP, lambda: run_converter(args.binary, 1, tiny_ckpt, out, rss_dir, []))]
    always = [name for name, _ in variants]
    for np in (1, 2):
        for label, extra in (("copy", []), ("filter", ["--filter-optimizer"])):
            variants.append((f"{label} np={np}", lambda np=np, extra=extra: run_converter(args.binary, np, ckpt, out, rss_dir, extra)))
            variants.append((f"{label} np={np} --no-fsync",
                             lambda np=np, extra=extra: run_converter(args.binary, np, ckpt, out, rss_dir, extra + ["--no-fsync"])))
    for label, extra in (("copy", []), ("filter", ["--filter-optimizer"])) if args.before else ():
        variants.append((f"before: {label} np=1",
                         lambda extra=extra: run_converter(args.before, 1, ckpt, out, rss_dir, extra)))
    variants.append(("filter np=2 --balance size",
                     lambda: run_converter(args.binary, 2, ckpt, out, rss_dir, ["--filter-optimizer", "--balance", "size"])))

    def load_and_resave():
        # the Python/numpy peer of --filter-optimizer, with its peak RSS from /usr/bin/time
        seconds = timed(["/usr/bin/time", "-f", "%M", "-o", os.path.join(rss_dir, "rss.python"), "/usr/bin/python3",
                         os.path.join(HERE, "load_resave_filter.py"), ckpt, out])
        with open(os.path.join(rss_dir, "rss.python")) as f:
            return seconds, [int(f.read().split()[-1]) / 1024.0]

    variants.append(("load-and-resave filter (python)", load_and_resave))
    in_process = {}  # variant -> the run record's total seconds per run
    balance = {}     # variant -> the largest rank's bytes read over the mean, per run

    def recorded(name, fn):  # runs fn, then keeps the in-process time its run record says
        def run():
            result = fn()
            with open(os.path.join(out, "run_record.json")) as f:
                record = json.load(f)
            in_process.setdefault(name, []).append(record["seconds"]["total"])
            read = [r["bytes_in"] for r in record.get("per_rank", [])]  # a merge's record has no ranks' bytes
            if read and sum(read) > 0:
                balance.setdefault(name, []).append(max(read) / (sum(read) / len(read)))
            return result
        return run

    hdf5_level = []
    if args.hdf5:
        for np_ in (1, 2):
            for label, extra in (("copy", []), ("filter", ["--filter-optimizer"])):
                name = f"hdf5 {label} np={np_}"
                if np_ == 2:
                    hdf5_level.append((name, f"{label} np=2"))
                    variants = [(n, recorded(n, fn) if n == f"{label} np=2" else fn) for n, fn in variants]
                variants.append((name, recorded(name, lambda np_=np_, extra=extra: run_converter(
                    args.binary, np_, ckpt, out, rss_dir, extra + ["--format", "hdf5"]))))

    split_level = []
    if args.split:
        for label, extra in (("copy", []), ("filter", ["--filter-optimizer"])):
            pair = []
            for how, chunk in (("whole files", "0"), ("pieces", "64")):
                name = f"split: {label} np=2, {how}"
                pair.append(name)
                variants.append((name, recorded(name, lambda extra=extra, chunk=chunk: run_converter(
                    args.binary, 2, split_ckpt, out, rss_dir, extra + ["--chunk-mib", chunk]))))
            split_level.append(pair)

    quantized = []
    if args.quantize:
        for dtype in ("int4", "fp16"):
            name = f"filter np=2 {dtype}"
            quantized.append(name)
            variants.append((name, lambda dtype=dtype: run_converter(
                args.binary, 2, ckpt, out, rss_dir, ["--filter-optimizer", "--quantize-embeddings", dtype])))

    row_level = []
    if args.rows:
        for name, extra in (("rows: filter np=2", []),
                            ("rows: evict half np=2", ["--evict-older-than", "100"]),
                            ("rows: reshard 7 np=2", ["--reshard", "7"]),
                            ("rows: evict half + reshard 7 np=2", ["--evict-older-than", "100", "--reshard", "7"])):
            row_level.append(name)
            variants.append((name, lambda extra=extra: run_converter(
                args.binary, 2, rows_ckpt, out, rss_dir, ["--filter-optimizer"] + extra)))

    delta_level = []
    delta_sized = []  # the export and the merge, both --balance size
    if args.deltas:
        # the base (the first checkpoint's filtered export) and the delta a merge applies, made once
        base, delta = os.path.join(args.dir, "delta-base"), os.path.join(args.dir, "delta-200")
        for path, ckpt_, extra in ((base, "ckpt_100", []), (delta, "ckpt_200", ["--delta-since", "100"])):
            shutil.rmtree(path, ignore_errors=True)
            run_converter(args.binary, 2, os.path.join(delta_source, ckpt_), path, rss_dir, ["--filter-optimizer"] + extra)
        training_ckpt = os.path.join(delta_source, "ckpt_200")

        def merge(extra):
            wrapper = ["sh", "-c", f'exec /usr/bin/time -f %M -o "{rss_dir}/rss.$OMPI_COMM_WORLD_RANK" "$0" "$@"',
                       args.binary]
            env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none")
            seconds = timed(mpirun_prefix(2) + wrapper + ["merge", base, delta, "--export-dir", out, "--quiet"] + extra,
                            env)
            peaks = []
            for rank in range(2):
                with open(os.path.join(rss_dir, f"rss.{rank}")) as f:
                    peaks.append(int(f.read().split()[-1]) / 1024.0)
            return seconds, peaks

        for name, extra in (("deltas: filter np=2", []), ("deltas: delta since 100 np=2", ["--delta-since", "100"])):
            delta_level.append(name)
            variants.append((name, recorded(name, lambda extra=extra: run_converter(
                args.binary, 2, training_ckpt, out, rss_dir, ["--filter-optimizer"] + extra))))
        delta_level.append("deltas: merge np=2")
        variants.append(("deltas: merge np=2", recorded("deltas: merge np=2", lambda: merge([]))))
        # both with the files dealt by size: round-robin gives one rank two thirds of the base export's bytes
        # (its files' sizes repeat with an even period), and a merge and an export are compared at the same plan
        sized = ["--balance", "size"]
        for name, fn in (("deltas: filter np=2 --balance size", lambda: run_converter(
                              args.binary, 2, training_ckpt, out, rss_dir, ["--filter-optimizer"] + sized)),
                         ("deltas: merge np=2 --balance size", lambda: merge(sized))):
            delta_sized.append(name)
            variants.append((name, recorded(name, fn)))

    watchdog_level = []  # (with the watchdog, without it)
    if args.watchdog:
        for label, extra in (("filter", ["--filter-optimizer"]),
                             ("hdf5 collective", ["--filter-optimizer", "--format", "hdf5", "--hdf5-transfer",
                                                  "collective"])):
            pair = []
            for how, timeout in (("watchdog", []), ("no watchdog", ["--stall-timeout", "0"])):
                name = f"{how}: {label} np=2"
                pair.append(name)
                variants.append((name, recorded(name, lambda extra=extra, timeout=timeout: run_converter(
                    args.binary, 2, ckpt, out, rss_dir, extra + timeout))))
            watchdog_level.append(pair)
        if args.before:  # the build before the watchdog (and before MPI_THREAD_MULTIPLE) at np 2
            name = "before: filter np=2"
            variants.append((name, recorded(name, lambda: run_converter(args.before, 2, ckpt, out, rss_dir,
                                                                         ["--filter-optimizer"]))))
            watchdog_level.append(("watchdog: filter np=2", name))

    if args.only:
        variants = [(n, fn) for n, fn in variants if n in always or args.only in n]
    times = {name: [] for name, _ in variants}
    rss = {name: [] for name, _ in variants}
    for run in range(args.runs):
        for name, fn in variants:
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(["sync"])
            # A VM that reports freed pages to its host (virtio-balloon free page reporting) takes them back a
            # moment after they are freed, and writing into them again faults each one in from the host: in
            # /dev/shm, a 4 GiB cp takes 0.9 s right after the previous variant's output was removed and 4.3 s
            # some seconds later. --settle lets every variant start after the host has taken them.
            # --prime is the other way to an equal start: every variant right after memory of its size was freed.
            time.sleep(args.settle)
            if args.prime:
                scratch = os.path.join(args.dir, "prime")
                os.makedirs(scratch, exist_ok=True)
                subprocess.run(["cp"] + files + [scratch], check=True)
                shutil.rmtree(scratch)
            seconds, peak = fn()
            times[name].append(seconds)
            rss[name].append(peak)
        print(f"e2e: run {run + 1}/{args.runs} done", flush=True)
    shutil.rmtree(out, ignore_errors=True)

    base = statistics.median(times["cp"])
    base_sync = statistics.median(times["cp + sync"])
    # Noise on a shared host only adds time, so the best of the runs is printed too (with the ratio of the bests).
    best_cp = min(times["cp"])
    rows = []
    print(f"\n{'variant':32} {'median s':>9} {'best s':>7} {'GiB/s':>7} {'vs cp':>6} {'vs cp+sync':>10} "
          f"{'best vs cp':>10}  peak RSS per rank (MiB)")
    for name, _ in variants:
        median = statistics.median(times[name])
        best = min(times[name])
        peaks = [max(r[i] for r in rss[name]) for i in range(len(rss[name][0]))] if rss[name][0] else []
        row = {"variant": name, "median_seconds": median, "all_seconds": times[name],
               "gib_per_second": (tiny_bytes if name == STARTUP else total) / 2**30 / median,
               "speed_vs_cp": base / median,
               "speed_vs_cp_sync": base_sync / median, "best_seconds": best, "best_speed_vs_cp": best_cp / best,
               "peak_rss_mib": peaks}
        if name in in_process:
            row["in_process_seconds"] = in_process[name]
        rows.append(row)
        print(f"{name:32} {median:9.2f} {best:7.2f} {row['gib_per_second']:7.2f} {row['speed_vs_cp']:6.2f} "
              f"{row['speed_vs_cp_sync']:10.2f} {row['best_speed_vs_cp']:10.2f}  "
              + ", ".join(f"{p:.0f}" for p in peaks))
    startup, best_startup = statistics.median(times[STARTUP]), min(times[STARTUP])
    print(f"\nstart-up (an export of {tiny_bytes / 1024:.0f} KiB at np 1): median {startup:.2f} s, "
          f"{startup / base:.2f}x cp's time alone; best {best_startup:.2f} s")
    for name in ("copy np=1", "filter np=1"):
        if name in times:
            rest, best_rest = statistics.median(times[name]) - startup, min(times[name]) - best_startup
            print(f"{name} less start-up, in multiples of the time of cp and of cp + sync: median {rest:.2f} s, "
                  f"{rest / base:.2f}x and {rest / base_sync:.2f}x; best {best_rest:.2f} s, {best_rest / best_cp:.2f}x "
                  f"and {best_rest / min(times['cp + sync']):.2f}x")
    if quantized:
        plain = statistics.median(times["filter np=2"])
        print()
        for name in quantized:
            print(f"{name}: {statistics.median(times[name]) / plain:.2f}x the time of the unquantized filter np=2")
    if row_level:
        plain = statistics.median(times[row_level[0]])
        print()
        for name in row_level[1:]:
            print(f"{name}: {statistics.median(times[name]) / plain:.2f}x the time of {row_level[0]}")
    if delta_level:
        plain = statistics.median(times[delta_level[0]])
        print()
        plain_in = statistics.median(in_process[delta_level[0]])
        for name in delta_level[1:]:
            print(f"{name}: {statistics.median(times[name]) / plain:.2f}x the time of {delta_level[0]}; in process "
                  f"(run record) {statistics.median(in_process[name]):.3f} s against {plain_in:.3f} s, "
                  f"{statistics.median(in_process[name]) / plain_in:.2f}x")
    if len(delta_sized) == 2 and all(name in times for name in delta_sized):
        export_, merge_ = delta_sized
        print(f"{merge_}: {statistics.median(times[merge_]) / statistics.median(times[export_]):.2f}x the time of "
              f"{export_}; in process {statistics.median(in_process[merge_]):.3f} s against "
              f"{statistics.median(in_process[export_]):.3f} s, "
              f"{statistics.median(in_process[merge_]) / statistics.median(in_process[export_]):.2f}x")
    if hdf5_level:
        print()
        for name, safetensors in hdf5_level:
            if name not in times or safetensors not in times:
                continue  # left out by --only
            print(f"{name}: {statistics.median(times[safetensors]) / statistics.median(times[name]):.2f}x the speed of "
                  f"{safetensors}; in process (run record) {statistics.median(in_process[name]):.3f} s against "
                  f"{statistics.median(in_process[safetensors]):.3f} s, "
                  f"{statistics.median(in_process[safetensors]) / statistics.median(in_process[name]):.2f}x the speed")
    if split_level:
        print()
        for whole, pieces in split_level:
            print(f"{pieces}: {statistics.median(times[pieces]):.2f} s against {statistics.median(times[whole]):.2f} s "
                  f"in whole files; in process {statistics.median(in_process[pieces]):.3f} s against "
                  f"{statistics.median(in_process[whole]):.3f} s; the largest rank's bytes read / the mean: "
                  f"{statistics.median(balance[pieces]):.2f} against {statistics.median(balance[whole]):.2f}")
    if watchdog_level:
        print()
        for watched, plain in watchdog_level:
            print(f"{watched}: {statistics.median(times[watched]) / statistics.median(times[plain]):.3f}x the time of "
                  f"{plain}; in process (run record) {statistics.median(in_process[watched]):.3f} s against "
                  f"{statistics.median(in_process[plain]):.3f} s, "
                  f"{statistics.median(in_process[watched]) / statistics.median(in_process[plain]):.3f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"bytes": total, "files": len(files), "runs": args.runs, "dir": args.dir, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
