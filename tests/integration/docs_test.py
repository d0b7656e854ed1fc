#!/usr/bin/python3
"""The option list agrees everywhere a user reads it: `recis-convert --help`, docs/options.md (the one option table)
and the manual page generated from it; and `cmake --install` installs the binary, its plugin and the page.

    docs_test.py options --binary BIN --fixture MANPAGE --work DIR
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_test import REPO_ROOT, check, fresh, run_cases  # noqa: E402

NOT_LISTED = {"--help", "--version"}  # CLI11's own, in every list


def from_help(binary):
    text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout.split("Options:", 1)[1]
    return {m.group(1) for line in text.splitlines() if (m := re.match(r"\s+(?:-\w,)?(--[a-z0-9-]+)", line))}


def from_docs():
    with open(os.path.join(REPO_ROOT, "docs", "options.md")) as f:
        text = f.read()
    table = text[text.index("## Options"):text.index("## Exit codes")]
    return {name for line in table.splitlines() if line.startswith("| `")
            for name in re.findall(r"--[a-z0-9-]+", line.split(" | ")[0])}


def from_manpage(path):
    with open(path) as f:
        lines = f.read().splitlines()
    section = lines[lines.index(".SH OPTIONS"):lines.index(".SH EXIT STATUS")]
    return {name.replace("\\-", "-") for i, line in enumerate(section) if i and section[i - 1] == ".TP"
            for name in re.findall(r"(?:\\-){2}(?:[a-z0-9]|\\-)+", line)}


def case_options(args):
    manpage = args.fixture
    listed = {"--help": from_help(args.binary) - NOT_LISTED, "docs/options.md": from_docs() - NOT_LISTED,
              "recis-convert.1": from_manpage(manpage) - NOT_LISTED}
    for name, options in listed.items():
        for other, theirs in listed.items():
            check(options <= theirs, f"{name} lists {sorted(options - theirs)}, which {other} does not")
    print(f"ok: --help, docs/options.md and recis-convert.1 list the same {len(listed['--help'])} options")
    rendered = subprocess.run(["groff", "-man", "-Tutf8", "-ww", manpage], capture_output=True, text=True)
    check(rendered.returncode == 0 and not rendered.stderr, f"groff warns about {manpage}: {rendered.stderr}")
    # cmake --install: the binary and its plugin side by side, the page in man1
    build = os.path.dirname(os.path.abspath(args.binary))
    prefix = fresh(args.work, "prefix")
    installed = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True, text=True)
    check(installed.returncode == 0, f"cmake --install: {installed.stderr}")
    for path in ("bin/recis-convert", "bin/librecis_dense.so", "share/man/man1/recis-convert.1",
                 "share/recis-convert/recis-convert.sbatch"):
        check(os.path.exists(os.path.join(prefix, path)), f"cmake --install did not install {path}")
    version = subprocess.run([os.path.join(prefix, "bin", "recis-convert"), "--version"], capture_output=True,
                             text=True)
    check(version.returncode == 0, f"the installed binary does not run: {version.stderr}")
    print(f"ok: groff renders the page without a warning; cmake --install puts binary, plugin and page in {prefix}")


CASES = {"options": case_options}

if __name__ == "__main__":
    sys.exit(run_cases(CASES))
