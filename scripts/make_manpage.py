#!/usr/bin/python3
"""Writes the manual page recis-convert.1 from docs/options.md, the one option table (the build runs it; `cmake
--install` installs the page). Nothing is written by hand twice: the OPTIONS and EXIT STATUS sections are that
file's two tables, the rest is fixed text.

    make_manpage.py docs/options.md OUT.1 VERSION
"""
import re
import sys


def tables(markdown):
    """{section heading: [(first cell, second cell)]} for each '## ' section's table."""
    out, section = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
            out[section] = []
        elif section and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if len(cells) == 2 and cells[0] not in ("option", "code"):
                out[section].append((cells[0].replace("\\|", "|"), cells[1].replace("\\|", "|")))
    return out


def roff(text):
    """Markdown inline text as roff: `code` bold, escapes for backslashes, hyphens and leading dots."""
    text = text.replace("\\", "\\e")
    parts = re.split(r"(`[^`]*`)", text)
    out = ""
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out += "\\fB" + part[1:-1].replace("-", "\\-") + "\\fR"
        else:
            out += part.replace("-", "\\-") if part.lstrip().startswith("-") else part
    return "\\&" + out if out.startswith((".", "'")) else out


def main():
    source, target, version = sys.argv[1:4]
    with open(source, encoding="utf-8") as f:
        sections = tables(f.read())
    lines = [
        f'.TH RECIS\\-CONVERT 1 "" "recis-convert {version}" "User Commands"',
        ".SH NAME",
        "recis-convert \\- turn recommender-model training checkpoints into serving exports",
        ".SH SYNOPSIS",
        ".B mpirun \\-np",
        ".I N",
        ".B recis-convert",
        ".RI [ OPTIONS ]",
        ".br",
        ".B recis-convert",
        ".RB { inspect | verify | merge }",
        ".RI [ ARGS ]",
        ".SH DESCRIPTION",
        "Exports a RecIS checkpoint (or a HugeCTR model) for serving: the sparse tables (filtered, quantized,",
        "evicted, resharded or a delta), the dense network as TorchScript, metadata and a checksummed manifest.",
        "Data files are split over the MPI ranks, streamed through the row transforms into a staging directory,",
        "and published atomically by rank 0.",
        "The subcommands have their own",
        ".BR \\-\\-help .",
        ".SH OPTIONS",
    ]
    for option, meaning in sections["Options"]:
        lines += [".TP", roff(option), roff(meaning)]
    lines.append(".SH EXIT STATUS")
    for code, meaning in sections["Exit codes"]:
        lines += [".TP", f".B {code}", roff(meaning)]
    lines += [".SH SEE ALSO", ".BR mpirun (1),", ".BR sbatch (1);",
              "README.md and docs/options.md in the source tree."]
    with open(target, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
