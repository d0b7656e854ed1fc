"""Real PyTorch Distributed Checkpoints for the DCP source's tests, written and read by torch 2.x itself (Debian 13's
python3-torch 2.6, run by scripts/torch2-root.sh).

    torch2-root.sh python dcp_tools.py make OUT [--world 3] [--steps 100,200] [--rows-scale 1]
    torch2-root.sh python dcp_tools.py truth CKPT_DIR FILE.npz     every tensor of CKPT_DIR (a DCP directory) as
                                                                   torch's own loader builds it (dcp_to_torch_save)
    torch2-root.sh python dcp_tools.py describe CKPT_DIR           torch's own reading of its .metadata, as JSON
    torch2-root.sh python dcp_tools.py hostile CKPT_DIR OUT        variants of CKPT_DIR/.metadata, each wrong in one
                                                                   way (OUT/<what>.metadata)
    torch2-root.sh python dcp_tools.py tower OUT                   OUT/tower.pt, the dense network the checkpoint's
                                                                   dense tensors fit (model.dense.*) scripted with
                                                                   fresh weights, and OUT/sample_inputs.safetensors
    torch2-root.sh python dcp_tools.py large CKPT_DIR OUT [--tables 1000 --ranks 128]   OUT/.metadata of a large
                                                                   job's shape, built from CKPT_DIR's (no data)
    torch2-root.sh python dcp_tools.py score CKPT_DIR EXPORTED_PT  prints {"max_diff": ...}: the exported network
                                                                   against the eager tower with torch's own load of
                                                                   CKPT_DIR's weights, on fresh inputs

`make` starts --world gloo processes on this host (CPU), which build a torchrec-shaped model state_dict from
ShardedTensors placed with torch's own sharding API, as torchrec's planner places tables, and save it with
torch.distributed.checkpoint.save into a TorchEasyRec model directory, one checkpoint per step:

OUT/model.ckpt-<step>/model/        DCP of the model: .metadata + __<rank>_0.distcp
OUT/model.ckpt-<step>/optimizer/    DCP of an optimizer-like state (sharded momentum rows, a step count, a lr)
OUT/model.ckpt-<step>/plan          the sharding plan, as TorchEasyRec writes it (JSON)
OUT/torch_version                   the torch that wrote them

Tables, under TorchEasyRec's module names (torchrec's EmbeddingBagCollection / EmbeddingCollection naming):
  ebc.embedding_bags.user_id   [R, 16] float32, row-wise, ceil(R/W) rows per rank (the last fewer)
  ebc.embedding_bags.item_id   [R, 8]  float32, row-wise with uneven blocks and an empty shard (offset == R)
  ebc.embedding_bags.cate      [R, 12] float16, column-wise, 2 column blocks per rank (dealt round-robin)
  ec_list.0.embeddings.seq_item [R, 8] bfloat16, table-wise on the last rank
  mc_ebc ... zch_user           [R, 8] float32, row-wise, with its managed-collision buffers beside it
Dense: an MLP (weights, biases), a BatchNorm's buffers (num_batches_tracked is 0-d int64), and a 2-D tensor named
like a table that is not one (`.embedding_bags` without `.weight` at the end).
The values of a step are a pure function of (step, tensor, position): the same whatever --world.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.multiprocessing as mp
from torch.distributed._shard.sharded_tensor import Shard, ShardMetadata, init_from_local_shards

PREFIX = "model.embedding_group.emb_impls.all."
SEQ_PREFIX = "model.embedding_group.seq_emb_impls.all."
MC_PREFIX = "model.embedding_group.mc_emb_impls.all.mc_ebc."


def values(step, name, shape, dtype):
    """The tensor's full value at `step`: deterministic from its name, not from the ranks."""
    seed = (step * 1_000_003 + sum(ord(c) * (i + 1) for i, c in enumerate(name))) % (2**31)
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.int64:
        return torch.randint(0, 2**40, shape, generator=g, dtype=torch.int64)
    return (torch.randn(shape, generator=g) * 0.5).to(dtype)


def tables(rows_scale):
    """name -> (shape, dtype, layout); the layouts are placements by rank (see shards())."""
    r = rows_scale
    return {
        PREFIX + "ebc.embedding_bags.user_id.weight": ((1000 * r, 16), torch.float32, "row"),
        PREFIX + "ebc.embedding_bags.item_id.weight": ((777 * r, 8), torch.float32, "row_uneven_empty"),
        PREFIX + "ebc.embedding_bags.cate.weight": ((500 * r, 12), torch.float16, "column"),
        SEQ_PREFIX + "ec_list.0.embeddings.seq_item.weight": ((300 * r, 8), torch.bfloat16, "table"),
        MC_PREFIX + "_embedding_module.embedding_bags.zch_user.weight": ((200 * r, 8), torch.float32, "row"),
    }


def shards(layout, shape, world):
    """[(rank, offsets, sizes)] of a table, as torchrec's planner would place it on `world` ranks."""
    rows, dim = shape
    if layout == "row":  # ChunkShardingSpec(dim=0): ceil(R/W) rows a rank until they run out
        per = -(-rows // world)
        out = []
        for k in range(world):
            first = min(k * per, rows)
            out.append((k, [first, 0], [min(per, rows - first), dim]))
        return out
    if layout == "row_uneven_empty":  # ranks 0..W-2 hold 1, 2, ... parts of the rows; the last an empty shard
        if world == 1:
            return [(0, [0, 0], [rows, dim])]
        weights = list(range(1, world))
        cuts = [rows * sum(weights[:k]) // sum(weights) for k in range(world)]
        out = [(k, [cuts[k], 0], [cuts[k + 1] - cuts[k], dim]) for k in range(world - 1)]
        return out + [(world - 1, [rows, 0], [0, dim])]  # its offset is the row count
    if layout == "column":  # column blocks dealt round-robin, 2 per rank
        blocks = 2 * world
        cuts = [dim * b // blocks for b in range(blocks + 1)]
        return [(b % world, [0, cuts[b]], [rows, cuts[b + 1] - cuts[b]]) for b in range(blocks)]
    if layout == "table":
        return [(world - 1, [0, 0], [rows, dim])]
    raise ValueError(layout)


def sharded(name, full, layout, rank, world):
    local = []
    metas = []
    for owner, offsets, sizes in shards(layout, tuple(full.shape), world):
        meta = ShardMetadata(shard_offsets=offsets, shard_sizes=sizes, placement=f"rank:{owner}/cpu")
        metas.append(meta)
        if owner == rank:
            piece = full[offsets[0]:offsets[0] + sizes[0], offsets[1]:offsets[1] + sizes[1]].clone()
            local.append(Shard(tensor=piece, metadata=meta))
    return init_from_local_shards(local, *full.shape)


def model_state(step, rank, world, rows_scale):
    state = {}
    for name, (shape, dtype, layout) in tables(rows_scale).items():
        state[name] = sharded(name, values(step, name, shape, dtype), layout, rank, world)
    # the managed-collision module's buffers (torchrec MCHManagedCollisionModule): sorted raw ids and, for each, the
    # row of the table it was given; row-wise sharded as the table is
    zch = MC_PREFIX + "_embedding_module.embedding_bags.zch_user.weight"
    zch_rows = tables(rows_scale)[zch][0][0]
    raw = torch.sort(values(step, "zch raw ids", (zch_rows,), torch.int64)).values
    mapping = torch.randperm(zch_rows, generator=torch.Generator().manual_seed(step))
    mch = MC_PREFIX + "_managed_collision_collection._managed_collision_modules.zch_user."
    for name, full in ((mch + "_mch_sorted_raw_ids", raw), (mch + "_mch_remapped_ids_mapping", mapping)):
        per = -(-zch_rows // world)
        local = []
        for k in range(world):
            first = min(k * per, zch_rows)
            n = min(per, zch_rows - first)
            if k == rank:
                meta = ShardMetadata(shard_offsets=[first], shard_sizes=[n], placement=f"rank:{k}/cpu")
                local.append(Shard(tensor=full[first:first + n].clone(), metadata=meta))
        state[name] = init_from_local_shards(local, zch_rows)
    # dense: plain tensors, the same on every rank (DCP writes each once, not necessarily from rank 0)
    dense = {
        "model.dense.mlp.0.weight": ((32, 24), torch.float32),
        "model.dense.mlp.0.bias": ((32,), torch.float32),
        "model.dense.mlp.2.weight": ((1, 32), torch.float32),
        "model.dense.mlp.2.bias": ((1,), torch.float32),
        "model.dense.bn.running_mean": ((24,), torch.float32),
        "model.dense.bn.running_var": ((24,), torch.float32),
        "model.dense.embedding_bags_proj.weight": ((8, 8), torch.float32),
    }
    for name, (shape, dtype) in dense.items():
        state[name] = values(step, name, shape, dtype)
    state["model.dense.bn.running_var"] = state["model.dense.bn.running_var"].abs() + 0.5  # a variance
    state["model.dense.bn.num_batches_tracked"] = torch.tensor(step, dtype=torch.int64)
    return state


def optimizer_state(step, rank, world, rows_scale):
    name = PREFIX + "ebc.embedding_bags.user_id.weight"
    shape, _, layout = tables(rows_scale)[name]
    momentum = sharded(name + ".momentum1", values(step, name + ".momentum1", shape, torch.float32), layout, rank, world)
    return {"state": {name: {"momentum1": momentum, "step": torch.tensor(float(step))}},
            "param_groups": [{"lr": 0.01, "params": [name]}]}


def plan(world, rows_scale):
    out = {}
    for name, (_, _, layout) in tables(rows_scale).items():
        kind = {"row": "row_wise", "row_uneven_empty": "row_wise", "column": "column_wise", "table": "table_wise"}[layout]
        table = name.rsplit(".", 2)[-2]
        out.setdefault(name.rsplit(".", 3)[0], {})[table] = {"sharding_type": kind, "compute_kernel": "fused",
                                                          "ranks": list(range(world))}
    return out


def worker(rank, world, out, steps, rows_scale, init):
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    for step in steps:
        ckpt = os.path.join(out, f"model.ckpt-{step}")
        dcp.save(model_state(step, rank, world, rows_scale), checkpoint_id=os.path.join(ckpt, "model"))
        dcp.save(optimizer_state(step, rank, world, rows_scale), checkpoint_id=os.path.join(ckpt, "optimizer"))
        if rank == 0:
            with open(os.path.join(ckpt, "plan"), "w") as f:
                json.dump(plan(world, rows_scale), f)
        dist.barrier()
    dist.destroy_process_group()


def make(args):
    os.makedirs(args.out, exist_ok=True)
    steps = [int(s) for s in args.steps.split(",")]
    init = "file://" + os.path.join(os.path.abspath(args.out), ".gloo-rendezvous")
    if os.path.exists(init[len("file://"):]):
        os.remove(init[len("file://"):])
    mp.start_processes(worker, args=(args.world, args.out, steps, args.rows_scale, init), nprocs=args.world,
                       start_method="fork")
    os.remove(init[len("file://"):])
    with open(os.path.join(args.out, "torch_version"), "w") as f:
        f.write(torch.__version__ + "\n")


def load_whole(ckpt_dir, scratch):
    """Every tensor of a DCP directory as torch's own reader builds it (dcp_to_torch_save, then torch.load)."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    dcp_to_torch_save(ckpt_dir, scratch)
    state = torch.load(scratch, weights_only=False)
    os.remove(scratch)
    return state


def truth(args):
    """Every tensor as torch's own DCP reader builds it, as numpy arrays (bf16 and f16 as their raw bits); with
    --raw, each 2-D table's elements as raw little-endian bytes, DIR/<table>.bin, for the C++ tests."""
    state = load_whole(args.ckpt_dir, args.file + ".pt")
    if args.raw:
        os.makedirs(args.raw, exist_ok=True)
        for name, t in state.items():
            if isinstance(t, torch.Tensor) and name.endswith(".weight") and ".embedding" in name and t.dim() == 2:
                with open(os.path.join(args.raw, name.rsplit(".", 2)[-2] + ".bin"), "wb") as f:
                    f.write(t.contiguous().view(torch.uint8).numpy().tobytes())
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, torch.Tensor):
            t = value
            if t.dtype == torch.bfloat16:
                flat[prefix[:-1] + "|bf16"] = t.view(torch.int16).numpy()
            elif t.dtype == torch.float16:
                flat[prefix[:-1] + "|f16"] = t.view(torch.int16).numpy()
            else:
                flat[prefix[:-1]] = t.numpy()

    walk("", state)
    np.savez(args.file, **flat)


class Tower(torch.nn.Module):
    """The dense network whose state_dict is the checkpoint's model.dense.* tensors."""

    def __init__(self):
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(24, affine=False)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
        self.embedding_bags_proj = torch.nn.Linear(8, 8, bias=False)

    def forward(self, features: torch.Tensor, pooled: torch.Tensor):
        return torch.sigmoid(self.mlp(self.bn(features)).squeeze(-1) + self.embedding_bags_proj(pooled).sum(-1))


TOWER_PREFIX = "model.dense."


def tower(args):
    os.makedirs(args.out, exist_ok=True)
    torch.jit.script(Tower().eval()).save(os.path.join(args.out, "tower.pt"))
    from torch2_tools import write_safetensors
    write_safetensors(os.path.join(args.out, "sample_inputs.safetensors"),
                      {"features": torch.randn(4, 24), "pooled": torch.randn(4, 8)})


def score(args):
    state = load_whole(args.ckpt_dir, args.exported + ".state.pt")
    eager = Tower().eval()
    eager.load_state_dict({k[len(TOWER_PREFIX):]: v for k, v in state.items() if k.startswith(TOWER_PREFIX)})
    exported = torch.jit.load(args.exported, map_location="cpu").eval()
    torch.manual_seed(7)
    max_diff = 0.0
    for batch in (1, 64):
        x = (torch.randn(batch, 24), torch.randn(batch, 8))
        with torch.no_grad():
            max_diff = max(max_diff, float((eager(*x) - exported(*x)).abs().max()))
    print(json.dumps({"max_diff": max_diff, "torch": torch.__version__}))


def describe(args):
    """torch's own reading of a DCP directory's metadata, as JSON on stdout: every tensor's size, dtype, chunks."""
    from torch.distributed.checkpoint import FileSystemReader
    md = FileSystemReader(args.dcp_dir).read_metadata()
    out = {}
    for fqn, meta in md.state_dict_metadata.items():
        if not hasattr(meta, "chunks"):
            out[fqn] = None  # a byte item
            continue
        out[fqn] = {"size": list(meta.size), "dtype": str(meta.properties.dtype).replace("torch.", ""),
                    "chunks": [[list(c.offsets), list(c.sizes)] for c in meta.chunks]}
    json.dump(out, sys.stdout)


class _System:
    """Pickles as a call of os.system (posix.system): what a hostile .metadata hides in its planner_data."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/recis-dcp-pwned",))


def hostile(args):
    """Variants of a real .metadata, each wrong in one way, re-pickled by torch's own classes: OUT/<name>.metadata."""
    import copy
    import pickle
    from torch.distributed.checkpoint.metadata import MetadataIndex

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.dcp_dir, ".metadata"), "rb") as f:
        data = f.read()
    original = pickle.loads(data)
    table = PREFIX + "ebc.embedding_bags.user_id.weight"

    def variant(name, change):
        md = copy.deepcopy(original)
        change(md)
        with open(os.path.join(args.out, name + ".metadata"), "wb") as f:
            pickle.dump(md, f)

    def resize(md, index, rows):
        chunk = md.state_dict_metadata[table].chunks[index]
        md.state_dict_metadata[table].chunks[index] = type(chunk)(offsets=chunk.offsets,
                                                                  sizes=torch.Size([rows, chunk.sizes[1]]))

    variant("overlap", lambda md: resize(md, 0, md.state_dict_metadata[table].chunks[0].sizes[0] + 1))
    variant("gap", lambda md: resize(md, 0, md.state_dict_metadata[table].chunks[0].sizes[0] - 1))
    variant("outside", lambda md: resize(md, len(md.state_dict_metadata[table].chunks) - 1,
                                         md.state_dict_metadata[table].chunks[-1].sizes[0] + 1))

    def item_of(md):
        offsets = md.state_dict_metadata[table].chunks[0].offsets
        return next(k for k in md.storage_data if k.fqn == table and k.offset == offsets)

    variant("missing_item", lambda md: md.storage_data.pop(item_of(md)))

    def traversal(md):
        info = md.storage_data[item_of(md)]
        md.storage_data[item_of(md)] = type(info)(relative_path="../outside.distcp", offset=info.offset,
                                                  length=info.length)

    variant("traversal", traversal)

    def transformed(md):
        md.storage_data[item_of(md)].transform_descriptors = ["zstd"]

    variant("transformed", transformed)
    variant("os_system", lambda md: md.planner_data.__setitem__("evil", _System()))

    def complex_dtype(md):
        props = md.state_dict_metadata[table].properties
        props.dtype = torch.complex64

    variant("complex_dtype", complex_dtype)
    with open(os.path.join(args.out, "truncated.metadata"), "wb") as f:
        f.write(data[: len(data) // 2])
    assert MetadataIndex  # imported to check the classes are torch's own


def large(args):
    """A .metadata as a large torchrec job writes it (OUT/.metadata, no data files): --tables float32 tables of
    [--rows, 16], each row-wise over --ranks ranks, built with torch's own metadata classes from a real one's."""
    import pickle
    from torch.distributed.checkpoint.filesystem import _StorageInfo
    from torch.distributed.checkpoint.metadata import ChunkStorageMetadata, Metadata, MetadataIndex, \
        TensorStorageMetadata

    with open(os.path.join(args.dcp_dir, ".metadata"), "rb") as f:
        real = pickle.load(f)
    properties = real.state_dict_metadata[PREFIX + "ebc.embedding_bags.user_id.weight"].properties
    state, storage = {}, {}
    per = -(-args.rows // args.ranks)
    for t in range(args.tables):
        fqn = PREFIX + f"ebc.embedding_bags.t{t}.weight"
        chunks = []
        for r in range(args.ranks):
            first, n = min(r * per, args.rows), min(per, args.rows - min(r * per, args.rows))
            offsets = torch.Size([first, 0])
            chunks.append(ChunkStorageMetadata(offsets=offsets, sizes=torch.Size([n, 16])))
            storage[MetadataIndex(fqn, offsets)] = _StorageInfo(relative_path=f"__{r}_0.distcp",
                                                                offset=t * (n * 64 + 1024), length=n * 64 + 1024)
        state[fqn] = TensorStorageMetadata(properties=properties, size=torch.Size([args.rows, 16]), chunks=chunks)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, ".metadata"), "wb") as f:
        pickle.dump(Metadata(state_dict_metadata=state, planner_data=None, storage_data=storage), f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--world", type=int, default=3)
    m.add_argument("--steps", default="100,200")
    m.add_argument("--rows-scale", type=int, default=1)
    t = sub.add_parser("truth")
    t.add_argument("ckpt_dir")
    t.add_argument("file")
    t.add_argument("--raw", help="also each table's raw bytes into this directory")
    d = sub.add_parser("describe")
    d.add_argument("dcp_dir")
    h = sub.add_parser("hostile")
    h.add_argument("dcp_dir")
    h.add_argument("out")
    w = sub.add_parser("tower")
    w.add_argument("out")
    s = sub.add_parser("score")
    s.add_argument("ckpt_dir")
    s.add_argument("exported")
    g = sub.add_parser("large")
    g.add_argument("dcp_dir")
    g.add_argument("out")
    g.add_argument("--tables", type=int, default=1000)
    g.add_argument("--ranks", type=int, default=128)
    g.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    {"make": make, "truth": truth, "describe": describe, "hostile": hostile, "tower": tower,
     "score": score, "large": large}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
