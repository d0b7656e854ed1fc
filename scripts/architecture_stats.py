#!/usr/bin/python3
"""Measures the shape of the code, for a redesign's before and after (issue 37's closing note):

    scripts/architecture_stats.py [--root DIR] [--top N] [--json F]

- the lines of each folder of src/ and include/, and the largest files;
- the longest functions (a brace-matching reading of the .cpp files: good enough to rank them, not a parser);
- the call sites of the row loop's steps (SlotRows::apply, compact_rows, RowSelector::open): one row loop has few;
- the feature-flag lines (a test of --evict-*, --reshard, --format hdf5, --resume, a delta, HugeCTR or split
  files), by folder: a pipeline that hands features to their modules tests them in few places;
- every use of MPI outside src/mpi and include/recis_convert/mpi (the design keeps MPI there).
Exit status 0; the numbers are for reading. With --check, the rules the design keeps are judged instead
(ctest's architecture_rules): exit 1, naming each break, when MPI is used outside mpi/, a message type's
encoding (NLOHMANN_DEFINE_TYPE_*) is defined outside mpi/ (mpi/job_messages.h lists them all), or the
orchestrator (src/job.cpp, and the export's stages in src/export_job.cpp) is over ORCHESTRATOR_LINES lines or has a function over FUNCTION_LINES.
"""
import argparse
import json
import os
import re
import subprocess
import sys

FEATURE_FLAG = re.compile(
    r"\b(?:o|options|opts|r\.options|request\.options)\.(?:eviction|reshard|resume|format|selects_rows\(\)|is_delta\(\))"
    r"|is_hugectr\(\)|ExportFormat::kHdf5|\br\.(?:reshard|row_table_plan|selections)\b"
    r"|\brequest\.(?:reshard|row_table_plan|selections)\b|splits_files\(|\.split\(")
ROW_STEPS = {
    "SlotRows::apply": re.compile(r"(?:->|\.)apply\("),
    "compact_rows": re.compile(r"\bcompact_rows\("),
    "RowSelector::open": re.compile(r"RowSelector::open(?:_if)?\("),
}
ORCHESTRATORS = ("src/job.cpp", "src/export_job.cpp")
ORCHESTRATOR_LINES = 300  # the stage order of the user's shape and nothing else
FUNCTION_LINES = 80
MESSAGE_ENCODING = re.compile(r"\bNLOHMANN_DEFINE_TYPE_")
MPI_USE = re.compile(r"\bMPI_[A-Za-z_]+\b|#include <mpi\.h>")


def sources(root):
    for top in ("src", "include"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if name.endswith((".cpp", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, name), root)


def functions(root):
    """(name, file, first line, lines) of every function body of src/, by Universal Ctags (Debian's universal-ctags)."""
    try:
        listing = subprocess.run(["ctags", "--output-format=json", "--fields=+ne", "--c++-kinds=f", "-R", "-o", "-",
                                  "src"], cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("architecture_stats: no function lengths without Universal Ctags (apt-get install universal-ctags)")
    found = []
    for line in listing.splitlines():
        tag = json.loads(line)
        if tag.get("kind") != "function" or "end" not in tag or tag["name"].startswith("__anon"):
            continue
        scope = tag.get("scope", "")
        if tag.get("scopeKind") == "function":  # a lambda's or local class's body is its function's
            continue
        name = tag["name"] if tag.get("scopeKind") != "class" else scope.split("::")[-1] + "::" + tag["name"]
        found.append((name, tag["path"], tag["line"], tag["end"] - tag["line"] + 1))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json")
    parser.add_argument("--check", action="store_true", help="judge the design's rules; print only what breaks them")
    args = parser.parse_args()
    files, folders, funcs, steps, flags, mpi = {}, {}, [], {k: [] for k in ROW_STEPS}, {}, []
    encodings = []  # message encodings outside mpi/
    for rel in sources(args.root):
        with open(os.path.join(args.root, rel), encoding="utf-8") as f:
            text = f.read()
        count = text.count("\n")
        files[rel] = count
        folder = os.path.dirname(rel).replace("include/recis_convert", "include")
        folders[folder] = folders.get(folder, 0) + count
        in_mpi = "/mpi/" in rel + "/"
        for number, line in enumerate(text.split("\n"), 1):
            code = line.split("//")[0]
            for step, pattern in ROW_STEPS.items():
                if pattern.search(code) and not re.search(r"^\s*(?:static\s+)?(?:Status|Result<)", code):
                    steps[step].append(f"{rel}:{number}")
            if FEATURE_FLAG.search(code):
                flags.setdefault(folder, []).append(f"{rel}:{number}")
            if MPI_USE.search(code) and not in_mpi and rel != "src/main.cpp":
                mpi.append(f"{rel}:{number}: {line.strip()}")
            if MESSAGE_ENCODING.search(code) and not in_mpi:
                encodings.append(f"{rel}:{number}: {line.strip()}")
    if args.check:
        breaks = [f"MPI outside mpi/ (give mpi/ the door instead): {site}" for site in mpi]
        breaks += [f"a message encoding outside mpi/ (mpi/job_messages.h lists them): {site}" for site in encodings]
        for orchestrator in ORCHESTRATORS:
            if files.get(orchestrator, 0) > ORCHESTRATOR_LINES:
                breaks.append(f"{orchestrator}: {files[orchestrator]} lines, over {ORCHESTRATOR_LINES}")
        for name, rel, line, length in functions(args.root):
            if rel in ORCHESTRATORS and length > FUNCTION_LINES:
                breaks.append(f"{rel}:{line}: {name} is {length} lines, over {FUNCTION_LINES}")
        for b in breaks:
            print(b)
        return 1 if breaks else 0
    funcs = sorted(functions(args.root), key=lambda f: -f[3])
    print(f"lines: {sum(files.values())} in {len(files)} files")
    print("by folder:")
    for folder, count in sorted(folders.items()):
        print(f"  {folder:24} {count:6}")
    print(f"largest files:")
    for rel, count in sorted(files.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {count:5}  {rel}")
    print("longest functions:")
    for name, rel, line, length in funcs[: args.top]:
        print(f"  {length:5}  {name}  {rel}:{line}")
    print("row-loop steps, call sites:")
    for step, sites in steps.items():
        print(f"  {step}: {len(sites)}  {' '.join(sites)}")
    total = sum(len(v) for v in flags.values())
    print(f"feature-flag lines: {total} in {len({s.split(':')[0] for v in flags.values() for s in v})} files")
    for folder, sites in sorted(flags.items()):
        print(f"  {folder:24} {len(sites):4}")
    print(f"MPI outside mpi/: {len(mpi)}")
    for site in mpi:
        print(f"  {site}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"files": files, "folders": folders, "functions": funcs, "row_steps": steps,
                       "feature_flags": flags, "mpi_outside": mpi}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
