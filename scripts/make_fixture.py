#!/usr/bin/python3
"""Writes RecIS checkpoints for tests, examples and benchmarks, following ../shared/formats/recis-checkpoint.md.

Layout written (an output directory with its `checkpoint` file):

    OUT/checkpoint                 "ckpt_100\\nckpt_200\\n" (the last step listed is the latest)
    OUT/ckpt_<step>/model-%06d-of-%06d.safetensors   per (rank, writer thread) that got blocks; 0-based, gaps kept
    OUT/ckpt_<step>/index, tensorkey.json, torch_rank_weights_embs_table_multi_shard.json
    OUT/ckpt_<step>/model.pt, extra.pt, io_state_<rank>.pt, io_state_count
    OUT/dense_arch.pt              the dense network as TorchScript (other weights than model.pt's): two inputs,
                                   an MLP with BatchNorm, two sigmoid heads returned as a tuple
    OUT/single_arch.pt             a one-input, one-output network (model.pt keys "single_arch.*")

What a RecIS save does and this script reproduces:
- every table is sharded over all ranks by `id % 65536` into gen_slice ranges; rows are in hash-map
  (random) order; blocks per rank are [child@id, child@slot...] per table, then on rank 0 the dense optimizer
  scalars; block k goes to writer k % parallel; a writer with no block writes no file (so numbers have gaps);
- headers: compact JSON, keys in block order, "dtype, shape, data_offsets", 1..8 spaces of padding;
- sparse keys "child.slot/part_r_R", dense keys "name^ ", tensorkey values "child@slot^begin@end@65536";
- a `step_filter` slot (int64 [N, 1]) holds each row's last update step, in [0, <step>]; the filter hook's step
  buffer in model.pt (keyed by its engine table's module path) and extra.pt's global_step are the checkpoint's <step>;
- as RecIS v1.1 writes them (issue 34): optimizer scalars beta2, beta1, step holding beta^t and t; F16/BF16 tables
  without optimizer slots; raw int64 ids, negative ones and ones >= 2^52 included; a small-vocabulary table
  (cate_ids) whose rows all sit in rank 0's part; model.pt and extra.pt rooted at archive/; extra.pt with the
  dense optimizer's state under "recis.dense.optim.".

Needs Debian's /usr/bin/python3 with python3-numpy and python3-torch (torch only for model.pt & co).
"""
import argparse
import collections
import json
import os
import struct
import sys

import numpy as np

SLICE_SIZE = 65536


def gen_slice(rank, world, size=SLICE_SIZE):
    """RecIS hashtable.py gen_slice: contiguous ranges, the first size % world get one extra element."""
    base, extra = divmod(size, world)
    begin = rank * base + min(rank, extra)
    end = begin + base + (1 if rank < extra else 0)
    return begin, end


def slice_string(rank, world, size=SLICE_SIZE):
    begin, end = gen_slice(rank, world, size)
    width = len(str(size))
    return f"{begin:0{width}d}@{end:0{width}d}@{size}"


# (child name, dtype, dim, rows per scale unit, extra slots)
TABLES = [
    ("user_id", "F32", 8, 600, ["step_filter"]),
    ("item_id", "F16", 4, 400, []),
    ("cate_ids", "BF16", 16, 300, []),
    ("empty_table", "F32", 8, 0, []),
    ("商品_id", "F32", 4, 50, []),
]

OPTIMIZERS = {
    # slot names and dense scalars (name, dtype, shape) as RecIS v1.1's SparseAdamW / SparseAdam write them: in
    # their unordered_map's order (adamw.cc 208-219: beta2, beta1, step); AdamW's betas F32 [], Adam's F64 [1]
    # (adam.cc 168-175)
    "adamw": (["sparse_adamw_exp_avg", "sparse_adamw_exp_avg_sq"],
              [("sparse_adamw_beta2", "F32", []), ("sparse_adamw_beta1", "F32", []), ("sparse_adamw_step", "I64", [1])]),
    "adam": (["sparse_adam_exp_avg", "sparse_adam_exp_avg_sq"],
             [("sparse_adam_beta2", "F64", [1]), ("sparse_adam_beta1", "F64", [1]), ("sparse_adam_step", "I64", [1])]),
    "none": ([], []),
}
# what the scalars hold after t steps: the step, and beta^t (block_apply_adamw_op.cc 85-88)
BETAS = {"beta1": 0.9, "beta2": 0.999}


def scalar_value(name, dtype, shape, step):
    count = int(np.prod(shape)) if shape else 1
    if name.endswith("_step"):
        return np.full(count, step, dtype="<i8").tobytes()
    beta = BETAS[name.rsplit("_", 1)[1]]
    return np.full(count, beta ** step, dtype="<f4" if dtype == "F32" else "<f8").tobytes()


def random_values(rng, dtype, shape):
    """Raw little-endian bytes of a random tensor of a safetensors dtype."""
    count = int(np.prod(shape)) if shape else 1
    if dtype == "F32":
        return rng.standard_normal(count, dtype=np.float32).astype("<f4").tobytes()
    if dtype == "F64":
        return rng.standard_normal(count).astype("<f8").tobytes()
    if dtype == "F16":
        return rng.standard_normal(count, dtype=np.float32).astype("<f2").tobytes()
    if dtype == "BF16":  # the upper half of a float32
        bits = rng.standard_normal(count, dtype=np.float32).view(np.uint32)
        return (bits >> 16).astype("<u2").tobytes()
    if dtype == "I64":
        return rng.integers(0, 1 << 40, count, dtype=np.int64).astype("<i8").tobytes()
    raise ValueError(dtype)


ITEMSIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8}


class Block:
    def __init__(self, key, dtype, shape, data):
        self.key, self.dtype, self.shape, self.data = key, dtype, shape, data
        expected = (int(np.prod(shape)) if shape else 1) * ITEMSIZE[dtype]
        assert len(data) == expected, (key, len(data), expected)


def write_safetensors(path, blocks):
    header = collections.OrderedDict()
    offset = 0
    for b in blocks:
        header[b.key] = collections.OrderedDict(
            [("dtype", b.dtype), ("shape", list(b.shape)), ("data_offsets", [offset, offset + len(b.data)])])
        offset += len(b.data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (8 - len(text) % 8)  # RecIS pads 1..8 spaces, never 0
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blocks:
            f.write(b.data)


# Small-vocabulary tables: ids below 20000, so every row falls in rank 0's gen_slice and the other ranks write [0]
# and [0, D] blocks, as RecIS v1.1 does for a small vocabulary
SMALL_VOCABULARY = {"cate_ids"}
SMALL_IDS = 20000


def table_ids(rng, rows, child=""):
    """Unique ids in random (hash-map) order. RecIS v1.1 stores raw int64 ids (write_block.cc 52-61): an eighth
    are negative and an eighth at or above 2^52 (where float64 loses integers), the rest below 2^40."""
    if not rows:
        return np.zeros(0, dtype=np.int64)
    if child in SMALL_VOCABULARY and rows <= SMALL_IDS:
        return rng.choice(SMALL_IDS, size=rows, replace=False).astype(np.int64)
    ids = rng.choice(1 << 40, size=rows, replace=False).astype(np.int64)
    kind = rng.integers(0, 8, rows)
    ids[kind == 0] = -1 - ids[kind == 0]                 # negative: -1 .. -2^40
    ids[kind == 1] = ids[kind == 1] + (1 << 62)          # >= 2^52, and still unique
    return ids


def many_tables(count):
    """--tables N: N small F32 tables of dim 8 (a model with thousands of sparse features), 800 rows per scale
    unit each. At 4000 tables, --ranks 64 --parallel 4 and AdamW: a million blocks in 256 files, about 360 MB."""
    return [(f"feature_{t:05d}", "F32", 8, 800, []) for t in range(count)]


def parse_table(spec, first):
    """--table NAME:DTYPE:DIM:ROWS"""
    try:
        name, dtype, dim, rows = spec.split(":")
        if dtype not in ITEMSIZE or int(dim) < 1 or int(rows) < 0:
            raise ValueError(spec)
    except ValueError:
        sys.exit(f"make_fixture.py: --table {spec}: expected NAME:DTYPE:DIM:ROWS, e.g. wide:F64:6:200")
    return (name, dtype, int(dim), int(rows), ["step_filter"] if first else [])


def trained_part(rng, previous, begin, end, prev_step, step, slot_layout, shares):
    """--training-run: one part of a table `step - prev_step` steps after `previous` (ids, rows per slot): about
    shares[0] of the rows get new values in every slot and a step_filter in (prev_step, step]; about shares[1] as
    many new ids (in the part's slice, not yet in it) are appended with such rows. Every other row keeps its bytes."""
    ids, rows = previous
    n = len(ids)
    updated = np.flatnonzero(rng.random(n) < shares[0])
    count = max(1, int(n * shares[1]))
    fresh = rng.integers(0, 1 << 24, count, dtype=np.int64) * SLICE_SIZE + rng.integers(begin, end, count,
                                                                                       dtype=np.int64)
    fresh = np.unique(fresh[~np.isin(fresh, ids)]) if n else np.zeros(0, dtype=np.int64)  # an empty part stays so
    rng.shuffle(fresh)  # hash-map order
    out_rows = {}
    for slot, (sdtype, row_shape) in slot_layout.items():
        data = rows[slot].copy()
        changed = len(updated) + len(fresh)
        if slot == "step_filter":
            values = rng.integers(prev_step + 1, step + 1, changed, dtype=np.int64).astype("<i8").tobytes()
        else:
            values = random_values(rng, sdtype, [changed] + row_shape)
        values = np.frombuffer(values, dtype=np.uint8).reshape(changed, ITEMSIZE[sdtype] * row_shape[0])
        data[updated] = values[:len(updated)]
        out_rows[slot] = np.concatenate([data, values[len(updated):]])
    return np.concatenate([ids, fresh]), out_rows


def write_checkpoint(ckpt_dir, ranks, parallel, optimizer, scale, seed, table_specs=None, global_step=200,
                     previous=None, shares=(0.1, 0.05), writer_per_table=False, params_not_save=()):
    """Writes one checkpoint and returns its sparse rows {(child, rank): (ids, {slot: uint8 rows})}. With
    `previous` (that of the checkpoint at step previous["step"]), the rows are those after more training
    (trained_part) rather than new ones. With writer_per_table, every block of table t goes to writer t % parallel
    (not block k to writer k % parallel as RecIS deals them): one writer then holds a huge table whole. With
    params_not_save ("child@slot" names), those blocks are not saved and the others come in a shuffled order, as
    RecIS v1.1's filter returns list(set(blocks) - filtered) (checkpoint_manager.py 211-224)."""
    os.makedirs(ckpt_dir)
    rng = np.random.default_rng(seed)
    opt_slots, opt_scalars = OPTIMIZERS[optimizer]
    tables = []
    for child, dtype, dim, rows, extra in table_specs or TABLES:
        ids = table_ids(rng, rows * scale, child) if previous is None else np.zeros(0, dtype=np.int64)
        # RecIS v1.1 gives F16/BF16 tables no optimizer slots (initializer.cc 44)
        slots = ["embedding"] + extra + ([] if dtype in ("F16", "BF16") else opt_slots)
        tables.append((child, dtype, dim, ids, ids % SLICE_SIZE, slots))
    state = {"step": global_step}

    index_blocks, index_files, tensorkey, torch_rank = {}, {}, {}, {}
    file_number = 0
    for rank in range(ranks):
        begin, end = gen_slice(rank, ranks)
        part = f"/part_{rank}_{ranks}"
        blocks = []
        table_of_block = []  # for writer_per_table
        for table_number, (child, dtype, dim, ids, hashed, slots) in enumerate(tables):
            layout = {slot: ("I64", [1]) if slot == "step_filter" else (dtype, [dim]) for slot in slots}
            trained = None
            if previous is not None:
                trained = trained_part(rng, previous[(child, rank)], begin, end, previous["step"], global_step,
                                       layout, shares)
                mine = trained[0]
            else:
                mine = ids[(hashed >= begin) & (hashed < end)]
            n = len(mine)
            logical = slice_string(rank, ranks)
            blocks.append(Block(f"{child}.id{part}", "I64", [n], mine.astype("<i8").tobytes()))
            table_of_block.append(table_number)
            tensorkey[f"{child}.id{part}"] = f"{child}@id^{logical}"
            part_rows = {}
            for slot in slots:
                sdtype, row_shape = layout[slot]
                shape = [n] + row_shape
                key = f"{child}.{slot}{part}"
                if trained is not None:
                    data = trained[1][slot].tobytes()
                elif slot == "step_filter":  # the step of each row's last update, as RecIS's filter hook keeps it
                    data = rng.integers(0, global_step + 1, n, dtype=np.int64).astype("<i8").tobytes()
                else:
                    data = random_values(rng, sdtype, shape)
                part_rows[slot] = np.frombuffer(data, dtype=np.uint8).reshape(n, ITEMSIZE[sdtype] * row_shape[0])
                blocks.append(Block(key, sdtype, shape, data))
                table_of_block.append(table_number)
                tensorkey[key] = f"{child}@{slot}^{logical}"
                if ".embedding" in key:
                    torch_rank[key] = {"dense": False, "dimension": shape[-1], "dtype": TORCH_NAME[sdtype],
                                       "hashmap_key": key.replace(".embedding", ".id", 1), "hashmap_key_dtype": "int64",
                                       "hashmap_value": key, "is_hashmap": True, "name": key, "shape": shape}
            state[(child, rank)] = (mine, part_rows)
        if rank == 0:
            for name, sdtype, shape in opt_scalars:
                blocks.append(Block(name + "^ ", sdtype, shape, scalar_value(name, sdtype, shape, global_step)))
                table_of_block.append(len(tables))
                torch_rank[name + "^ "] = {"dense": True, "dimension": 0, "dtype": TORCH_NAME[sdtype],
                                           "is_hashmap": False, "name": name + "^ ", "shape": shape}
        if params_not_save:
            kept = [k for k, b in enumerate(blocks) if tensor_name(b.key) not in params_not_save]
            rng.shuffle(kept)
            blocks, table_of_block = [blocks[k] for k in kept], [table_of_block[k] for k in kept]
        writers = [[] for _ in range(parallel)]
        for k, block in enumerate(blocks):
            writers[(table_of_block[k] if writer_per_table else k) % parallel].append(block)
        for thread, writer_blocks in enumerate(writers):
            if not writer_blocks:
                continue  # RecIS writes no file for an empty writer
            name = "model-%06d-of-%06d.safetensors" % (rank * parallel + thread, ranks * parallel)
            write_safetensors(os.path.join(ckpt_dir, name), writer_blocks)
            index_files[name] = file_number
            for block in writer_blocks:
                index_blocks[block.key] = file_number
            file_number += 1

    def dump(name, obj, **kw):
        with open(os.path.join(ckpt_dir, name), "w", encoding="utf-8") as f:
            f.write(json.dumps(obj, **kw))

    saved = set(index_blocks)
    tensorkey = {k: v for k, v in tensorkey.items() if k in saved}
    torch_rank = {k: v for k, v in torch_rank.items() if k in saved}
    dump("index", {"block_index": index_blocks, "file_index": index_files},
         separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    dump("tensorkey.json", tensorkey, indent=4, ensure_ascii=False, sort_keys=True)
    write_dense(ckpt_dir, ranks, torch_rank, seed, global_step,
                any("step_filter" in slots for *_, slots in tables))
    return state


def tensor_name(key):
    """RecIS's block.tensor_name(), which params_not_save matches: "child@slot" of "child.slot/part_r_R"."""
    if "/" not in key:
        return key.rstrip("^ ")
    child_slot = key.rsplit("/", 1)[0]
    child, slot = child_slot.rsplit(".", 1)
    return f"{child}@{slot}"


TORCH_NAME = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I64": "int64"}


def dense_arch_class():
    """The dense network of the fixtures: two mc blocks in, an MLP with BatchNorm, two sigmoid heads out.
    Input widths follow configs/example-fg.json and configs/example-mc.json (user 8+8, item 4+16+4)."""
    import torch

    class DenseArch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU())
            self.ctr = torch.nn.Linear(16, 1)
            self.cvr = torch.nn.Linear(16, 1)

        def forward(self, user_columns: torch.Tensor, item_columns: torch.Tensor):
            hidden = self.mlp(torch.cat([user_columns, item_columns], dim=1))
            return torch.sigmoid(self.ctr(hidden)), torch.sigmoid(self.cvr(hidden))

    return DenseArch


def single_arch_class():
    """A second dense network: one input block, one output (exported with --dense-name single_arch)."""
    import torch

    class SingleArch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(16, 1)

        def forward(self, user_columns: torch.Tensor):
            return torch.sigmoid(self.linear(user_columns))

    return SingleArch


# The filter hook's step buffer as RecIS v1.1 keys it in model.pt: by the module path of the EmbeddingEngine table
# that holds the step_filter children (hashtable_hook_impl.py 478, embedding_engine.py 608), shape [1]
FILTER_STEP_BUFFER = ("sparse_arch.engine._ht.CoalescedHashtable_"
                      "6aa02841c6660fa27ecbd777be7ee44cb4afc4c8e9866da726e2c3e46ad6bde0"
                      "._hashtable._filter_hook_impl._global_step")


def save_as_recis(obj, path):
    """torch.save through a file object, as RecIS saves model.pt and extra.pt: the records are rooted at archive/."""
    import torch

    with open(path, "wb") as f:
        torch.save(obj, f)


def write_dense(ckpt_dir, ranks, torch_rank, seed, global_step, step_filter):
    import torch

    torch.manual_seed(seed)
    DenseArch = dense_arch_class()
    SingleArch = single_arch_class()

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense_arch = DenseArch()
            self.single_arch = SingleArch()

    model = Model()
    with torch.no_grad():  # "trained" BatchNorm statistics, so a wrong buffer load shows in the outputs
        bn = model.dense_arch.mlp[1]
        bn.running_mean.copy_(torch.randn(16))
        bn.running_var.copy_(torch.rand(16) + 0.5)
        bn.num_batches_tracked.fill_(200)
    state = model.state_dict()  # an OrderedDict with full module-path keys
    if step_filter:
        state[FILTER_STEP_BUFFER] = torch.tensor([global_step])
    save_as_recis(state, os.path.join(ckpt_dir, "model.pt"))
    # the trainer's step and epoch (0-dim int64), and the dense optimizer's state_dict
    optimizer = torch.optim.Adam(model.parameters())
    save_as_recis({"recis.dense.optim.": optimizer.state_dict(), "global_step": torch.tensor(global_step),
                   "train_epoch": torch.tensor(1)}, os.path.join(ckpt_dir, "extra.pt"))
    for rank in range(ranks):
        torch.save({"train_io": {"offset": rank * 100}}, os.path.join(ckpt_dir, f"io_state_{rank}.pt"))
    with open(os.path.join(ckpt_dir, "io_state_count"), "w") as f:
        f.write(str(ranks))
    # v1.1's final torch_rank json: the C++ entries (sorted), then the model.pt entries, re-dumped by Python.
    entries = collections.OrderedDict(sorted(torch_rank.items()))
    for name, tensor in state.items():
        entries[name] = collections.OrderedDict([("name", name), ("dense", True), ("dimension", 0),
                                                 ("is_hashmap", False),
                                                 ("dtype", str(tensor.dtype).replace("torch.", "")),
                                                 ("shape", list(tensor.shape))])
    with open(os.path.join(ckpt_dir, "torch_rank_weights_embs_table_multi_shard.json"), "w") as f:
        json.dump(entries, f, indent=4)


def write_dense_arch(path, seed):
    """The TorchScript a training script saves with torch.jit.script(model.dense_arch).save(...): the architecture,
    with whatever weights it had then (here a fresh initialisation, unlike the checkpoint's model.pt)."""
    import torch

    torch.manual_seed(seed + 1000)
    torch.jit.script(dense_arch_class()()).save(path)
    torch.jit.script(single_arch_class()()).save(path.replace("dense_arch.pt", "single_arch.pt"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output directory to create (must not exist)")
    parser.add_argument("--ranks", type=int, default=3, help="saving ranks (WORLD_SIZE), default 3")
    parser.add_argument("--parallel", type=int, default=4,
                        help="writer threads per rank (RecIS's default concurrency, 4); more threads than a rank's "
                             "blocks (e.g. 32) leave gaps in the file numbers")
    parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adamw")
    parser.add_argument("--scale", type=int, default=1, help="multiplies every table's rows (1 -> ~110 KiB)")
    parser.add_argument("--steps", default="100,200", help="checkpoints to write; the last is the latest")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tables", type=int, default=0,
                        help="write N generated tables feature_00000... (F32, dim 8, 800 rows per scale unit) "
                             "instead of the five example tables, e.g. 4000 with --ranks 64 for a million blocks")
    parser.add_argument("--table", action="append", default=[], metavar="NAME:DTYPE:DIM:ROWS",
                        help="write this table (repeatable) instead of the five example tables, e.g. "
                             "wide:F64:6:200; ROWS per scale unit; the first one also gets a step_filter slot")
    parser.add_argument("--step-filter-everywhere", action="store_true",
                        help="give every table a step_filter slot, not just the first (row-level benchmarks)")
    parser.add_argument("--training-run", action="store_true",
                        help="one training run: each checkpoint after the first updates a share of each part's rows "
                             "(new values in every slot, step_filter after the previous step) and adds new ids; the "
                             "other rows keep their bytes (delta exports and merge)")
    parser.add_argument("--updated-share", type=float, default=0.1,
                        help="--training-run: the share of rows updated per checkpoint, default 0.1")
    parser.add_argument("--new-share", type=float, default=0.05,
                        help="--training-run: new ids per checkpoint, as a share of a part's rows, default 0.05")
    parser.add_argument("--params-not-save", default="", metavar="CHILD@SLOT,...",
                        help="blocks RecIS's params_not_save leaves out (not id); the rest come in a shuffled order")
    parser.add_argument("--writer-per-table", action="store_true",
                        help="every block of table t to writer t %% parallel (RecIS deals block k to writer k %% "
                             "parallel): with a huge table, one file holds most bytes (work split below the file)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"make_fixture.py: {args.out} already exists")
    os.makedirs(args.out)
    steps = [s for s in args.steps.split(",") if s]
    table_specs = many_tables(args.tables) if args.tables else None
    if args.table:
        table_specs = [parse_table(spec, first=(n == 0)) for n, spec in enumerate(args.table)]
    if args.step_filter_everywhere:
        table_specs = [(name, dtype, dim, rows, sorted(set(slots) | {"step_filter"}))
                       for name, dtype, dim, rows, slots in (table_specs or TABLES)]
    not_saved = {name for name in args.params_not_save.split(",") if name}
    if any(name.endswith("@id") for name in not_saved):
        sys.exit("make_fixture.py: --params-not-save: a table's ids are always saved")
    state = None
    for i, step in enumerate(steps):
        state = write_checkpoint(os.path.join(args.out, f"ckpt_{step}"), args.ranks, args.parallel, args.optimizer,
                                 args.scale, args.seed + i, table_specs, global_step=int(step),
                                 previous=state if args.training_run else None,
                                 shares=(args.updated_share, args.new_share), writer_per_table=args.writer_per_table,
                                 params_not_save=not_saved)
    with open(os.path.join(args.out, "checkpoint"), "w") as f:
        f.write("".join(f"ckpt_{s}\n" for s in steps))
    write_dense_arch(os.path.join(args.out, "dense_arch.pt"), args.seed)


if __name__ == "__main__":
    main()
