"""What the torch 2.x tests do with a real torch 2.x (Debian 13's python3-torch 2.6, run by scripts/torch2-root.sh):
write a checkpoint whose model.pt and extra.pt torch 2.x wrote and dense architectures scripted by it, with ops that
libtorch 1.13 (Debian 12's, the plugin's) does not know; then load the exports as a user's torch would.

    torch2-root.sh python torch2_tools.py make --sparse-from CKPT OUT
    torch2-root.sh python torch2_tools.py score OUT MODEL EXPORTED_PT   prints {"max_diff": ...} against the eager
                                                                        model with the checkpoint's weights
    torch2-root.sh python torch2_tools.py dump OUT/ckpt_6/model.pt FILE.npz   model.pt's tensors, for the host

OUT/ckpt_6/           the sparse files of CKPT (a RecIS v1.1 checkpoint) with model.pt and extra.pt written by
                      torch 2.x; model.pt's storages are tagged "cuda:0" as a GPU job's are, and as RecIS saves it
                      (through a file object, so the archive is rooted at archive/)
OUT/<model>.pt        the dense architecture <model> as TorchScript, with fresh weights
OUT/<model>.json      {"inputs": [...], "outputs": [...]}: its forward arguments and output names
OUT/sample_inputs.safetensors   one batch of every model's inputs
OUT/torch_version     the torch that wrote them
"""
import argparse
import io
import json
import os
import shutil

import torch
import torch.nn.functional as F

BATCH = 8
WIDTH = 16


class Attention(torch.nn.Module):
    """nn.MultiheadAttention over the input cut into tokens, LayerNorm, GELU(tanh): a ranking model's tower."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(WIDTH, 32)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = torch.nn.LayerNorm(8)
        self.act = torch.nn.GELU(approximate="tanh")
        self.head = torch.nn.Linear(32, 1)

    def forward(self, user_columns: torch.Tensor):
        tokens = self.proj(user_columns).reshape(-1, 4, 8)
        mixed, _ = self.attn(tokens, tokens, tokens, need_weights=False)
        mixed = self.act(self.norm(mixed + tokens))
        return torch.sigmoid(self.head(mixed.reshape(-1, 32))).squeeze(-1)


class Sdpa(torch.nn.Module):
    """F.scaled_dot_product_attention between a user and an item sequence, two heads out."""

    def __init__(self):
        super().__init__()
        self.q = torch.nn.Linear(WIDTH, 32)
        self.kv = torch.nn.Linear(WIDTH, 64)
        self.norm = torch.nn.LayerNorm(32)
        self.ctr = torch.nn.Linear(32, 1)
        self.cvr = torch.nn.Linear(32, 1)
        self.register_buffer("scale", torch.tensor([1.5]))

    def forward(self, user_columns: torch.Tensor, item_columns: torch.Tensor):
        q = self.q(user_columns).reshape(-1, 2, 2, 8)
        k, v = self.kv(item_columns).reshape(-1, 2, 2, 16).chunk(2, dim=-1)
        mixed = F.scaled_dot_product_attention(q, k, v).reshape(-1, 32)
        mixed = F.gelu(self.norm(mixed), approximate="tanh") * self.scale
        return torch.sigmoid(self.ctr(mixed)).squeeze(-1), torch.sigmoid(self.cvr(mixed)).squeeze(-1)


MODELS = {"attention": (Attention, ["user_columns"], ["ctr"]),
          "sdpa": (Sdpa, ["user_columns", "item_columns"], ["ctr", "cvr"])}


def save_as_on_gpu(obj, path):
    """torch.save as a CUDA job writes it, without a GPU: every storage is tagged cuda:0 (torch 2.x loads it back
    with map_location). Through a file object, as RecIS saves, so the records are rooted at archive/."""
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
    finally:
        torch.serialization.location_tag = original


def make(args):
    shutil.rmtree(args.out, ignore_errors=True)
    ckpt = os.path.join(args.out, "ckpt_6")
    shutil.copytree(args.sparse_from, ckpt, ignore=shutil.ignore_patterns("model.pt", "extra.pt"))
    torch.manual_seed(34)
    state = {}
    for name, (cls, inputs, outputs) in MODELS.items():
        trained = cls().eval()  # the checkpoint's weights
        with torch.no_grad():
            for p in trained.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        state.update({f"{name}.{k}": v for k, v in trained.state_dict().items()})
        torch.jit.script(cls()).save(os.path.join(args.out, f"{name}.pt"))  # fresh weights
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({"inputs": inputs, "outputs": outputs}, f)
    # the filter hook's buffer of the engine table, as in the checkpoint the sparse files come from
    with open(os.path.join(args.sparse_from, "model.pt"), "rb") as f:
        for key, value in torch.load(io.BytesIO(f.read())).items():
            if not key.startswith("dense_arch."):
                state[key] = value
    save_as_on_gpu(state, os.path.join(ckpt, "model.pt"))
    save_as_on_gpu({"global_step": torch.tensor(6), "train_epoch": torch.tensor(0),
                    "recis.dense.optim.": {"state": {}, "param_groups": []}}, os.path.join(ckpt, "extra.pt"))
    from_safetensors = {"user_columns": torch.randn(BATCH, WIDTH), "item_columns": torch.randn(BATCH, WIDTH)}
    write_safetensors(os.path.join(args.out, "sample_inputs.safetensors"), from_safetensors)
    with open(os.path.join(args.out, "torch_version"), "w") as f:
        f.write(torch.__version__ + "\n")


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def score(args):
    """The exported model against the eager module with the checkpoint's weights, on fresh inputs at batch 1 and 64."""
    cls, inputs, _ = MODELS[args.model]
    state = torch.load(os.path.join(args.out, "ckpt_6", "model.pt"), map_location="cpu")
    prefix = args.model + "."
    eager = cls().eval()
    eager.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    exported = torch.jit.load(args.exported, map_location="cpu").eval()
    torch.manual_seed(6)
    max_diff = 0.0
    for batch in (1, 64):
        x = [torch.randn(batch, WIDTH) for _ in inputs]
        with torch.no_grad():
            want, got = eager(*x), exported(*x)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        max_diff = max([max_diff] + [float((a - b).abs().max()) for a, b in zip(want, got)])
    print(json.dumps({"max_diff": max_diff, "torch": torch.__version__}))


def dump(args):
    import numpy as np
    state = torch.load(args.model_pt, map_location="cpu")
    np.savez(args.npz, **{k: v.numpy() for k, v in state.items()})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("make")
    p.add_argument("--sparse-from", required=True)
    p.add_argument("out")
    p = commands.add_parser("score")
    p.add_argument("out")
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("exported")
    p = commands.add_parser("dump")
    p.add_argument("model_pt")
    p.add_argument("npz")
    args = parser.parse_args()
    {"make": make, "score": score, "dump": dump}[args.command](args)
