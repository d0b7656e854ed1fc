#!/usr/bin/python3
"""The peer a user would otherwise run: a load-and-resave optimizer filter in Python with numpy, as RecIS's
exporter does it (read every tensor of a file into memory, write back the kept ones with a new header).

    load_resave_filter.py CKPT_DIR OUT_DIR

Used by bench/e2e.py as the baseline for --filter-optimizer. Not part of the tool.
"""
import json
import os
import struct
import sys


def main():
    ckpt, out = sys.argv[1], sys.argv[2]
    os.makedirs(out)
    with open(os.path.join(ckpt, "tensorkey.json"), encoding="utf-8") as f:
        tensorkey = json.load(f)
    for name in sorted(os.listdir(ckpt)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(ckpt, name), "rb") as f:
            blob = f.read()  # the whole file in memory, as a load does
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8:8 + n])
        tensors = {key: blob[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]] for key, e in header.items()}
        kept = {}
        for key, entry in header.items():
            optimizer = key[:-2].startswith("sparse_") if key.endswith("^ ") else \
                tensorkey[key].rsplit("^", 1)[0].rsplit("@", 1)[1].startswith("sparse_")
            if not optimizer:
                kept[key] = entry
        if not kept:
            continue
        new_header, offset, parts = {}, 0, []
        for key, entry in kept.items():
            data = tensors[key]
            new_header[key] = {"dtype": entry["dtype"], "shape": entry["shape"], "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            parts.append(data)
        text = json.dumps(new_header, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (8 - len(text) % 8)
        with open(os.path.join(out, name), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(parts))


if __name__ == "__main__":
    main()
