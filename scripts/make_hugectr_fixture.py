#!/usr/bin/python3
"""Writes HugeCTR-format models for the tests (HugeCTR itself cannot be installed here), with reference outputs.

    make_hugectr_fixture.py OUT_DIR [--rows 1000] [--seed 7]

For each of DCN, WDL, DeepFM and DLRM-style graphs (OUT_DIR/<model>/):
  <model>.json                 the graph, as Model.graph_to_json writes it (torcheasyrec-hugectr.md B.3.1)
  <model>_dense_0.model        random float32 weights, the trainable layers' weights in layer order (B.2.5)
  <model>_dense_0.model.ntp.json   BatchNorm running mean/var, %f precision (B.1.4), when the graph has BatchNorm
  <model><i>_sparse_0.model/   key (int64), emb_vector (float32 x vec), slot_id (uint64, localized tables) (B.2.2)
  or a legacy single file of records {key, [slot_id], vec floats} (B.2.1; DCN uses it, with 4-byte keys)
  reference.npz                sample inputs ("dense", one [B, slots, vec] array per embedding top) and the
                               expected outputs ("out:<name>"), computed here with numpy, independently of
                               recis-convert
"""
import argparse
import json
import os

import numpy as np

B = 5  # sample batch


def data_layer(dense_dim, sparse):
    return {"type": "Data", "label": {"top": "label", "label_dim": 1}, "dense": {"top": "dense", "dense_dim": dense_dim},
            "sparse": [{"top": top, "nnz_per_slot": [1] * slots, "is_fixed_length": True, "slot_num": slots}
                       for top, slots in sparse]}


def embedding(bottom, top, vec, localized=False, combiner="sum"):
    return {"type": "LocalizedSlotSparseEmbeddingHash" if localized else "DistributedSlotSparseEmbeddingHash",
            "bottom": bottom, "top": top,
            "sparse_embedding_hparam": {"workspace_size_per_gpu_in_mb": 1, "embedding_vec_size": vec,
                                        "combiner": combiner},
            "optimizer": {"type": "Adam", "update_type": "Global",
                          "adam_hparam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-07}}}


def layer(type_, bottom, top, **params):
    out = {"type": type_, "bottom": bottom, "top": top}
    out.update(params)
    return out


def graphs():
    dcn = [data_layer(3, [("data1", 4)]), embedding("data1", "sparse_embedding1", 4),
           layer("Reshape", "sparse_embedding1", "reshape1", leading_dim=16, time_step=0),
           layer("Concat", ["reshape1", "dense"], "concat1", axis=1),
           layer("Slice", "concat1", ["slice11", "slice12"], ranges=[[0, 19], [0, 19]]),
           layer("MultiCross", "slice11", "multicross1", mc_param={"num_layers": 2}),
           layer("InnerProduct", "slice12", "fc1", fc_param={"num_output": 8}),
           layer("ReLU", "fc1", "relu1"), layer("Dropout", "relu1", "dropout1", rate=0.5),
           layer("FusedInnerProduct", "dropout1", "fc2", fc_param={"num_output": 8}),
           layer("Concat", ["fc2", "multicross1"], "concat2", axis=1),
           layer("InnerProduct", "concat2", "fc3", fc_param={"num_output": 1}),
           layer("BinaryCrossEntropyLoss", ["fc3", "label"], "loss")]
    wdl = [data_layer(3, [("wide_data", 2), ("deep_data", 4)]),
           embedding("wide_data", "sparse_embedding2", 1), embedding("deep_data", "sparse_embedding1", 4),
           layer("Reshape", "sparse_embedding1", "reshape1", leading_dim=16),
           layer("Reshape", "sparse_embedding2", "reshape2", leading_dim=2),
           layer("ReduceSum", "reshape2", "wide_redn", axis=1),
           layer("Concat", ["reshape1", "dense"], "concat1", axis=1),
           layer("InnerProduct", "concat1", "fc1", fc_param={"num_output": 8}),
           layer("ReLU", "fc1", "relu1"), layer("Dropout", "relu1", "dropout1", rate=0.5),
           layer("InnerProduct", "dropout1", "fc2", fc_param={"num_output": 1}),
           layer("Add", ["fc2", "wide_redn"], "add1"),
           layer("BinaryCrossEntropyLoss", ["add1", "label"], "loss")]
    deepfm = [data_layer(3, [("data1", 4)]), embedding("data1", "sparse_embedding1", 4, combiner="mean"),
              layer("Reshape", "sparse_embedding1", "reshape1", leading_dim=16),
              layer("WeightMultiply", "dense", "weight_multiply1", weight_dims=[3, 4]),
              layer("Concat", ["reshape1", "weight_multiply1"], "concat1", axis=1),
              layer("Slice", "concat1", ["slice11", "slice12"], ranges=[[0, 28], [0, 28]]),
              layer("InnerProduct", "slice11", "fc1", fc_param={"num_output": 8}),
              layer("ReLU", "fc1", "relu1"),
              layer("InnerProduct", "relu1", "fc2", fc_param={"num_output": 1}),
              layer("FmOrder2", "slice12", "fmorder2", out_dim=4),
              layer("ReduceSum", "fmorder2", "reducesum1", axis=1),
              layer("Sigmoid", "reducesum1", "gate1"),
              layer("ElementwiseMultiply", ["fc2", "gate1"], "gated1"),
              layer("Add", ["fc2", "reducesum1", "gated1"], "add1"),
              layer("BinaryCrossEntropyLoss", ["add1", "label"], "loss")]
    dlrm = [data_layer(3, [("data1", 3)]), embedding("data1", "sparse_embedding1", 4, localized=True),
            layer("InnerProduct", "dense", "fc1", fc_param={"num_output": 4}),
            layer("ReLU", "fc1", "relu1"),
            layer("BatchNorm", "relu1", "bn1", bn_param={"factor": 1.0, "eps": 1e-05}),
            layer("Interaction", ["bn1", "sparse_embedding1"], "interaction1"),
            layer("InnerProduct", "interaction1", "fc2", fc_param={"num_output": 4}),
            layer("ReLU", "fc2", "relu2"),
            layer("InnerProduct", "relu2", "fc3", fc_param={"num_output": 1}),
            layer("BinaryCrossEntropyLoss", ["fc3", "label"], "loss")]
    return {"dcn": dcn, "wdl": wdl, "deepfm": deepfm, "dlrm": dlrm}


# --- an independent numpy implementation of the layers ----------------------------------------------------------

def weight_shapes(layer_, x):
    """The trainable weights of a layer whose first input has per-sample shape x, in dense-file order (B.2.5)."""
    t = layer_["type"]
    if t in ("InnerProduct", "FusedInnerProduct"):
        return [(x[-1], layer_["fc_param"]["num_output"]), (1, layer_["fc_param"]["num_output"])]
    if t == "MultiCross":
        return [(1, x[0]), (1, x[0])] * layer_["mc_param"]["num_layers"]
    if t == "BatchNorm":
        return [(x[0],), (x[0],)]
    if t == "WeightMultiply":
        return [tuple(layer_["weight_dims"])]
    return []


def forward(graph, inputs, next_weight, next_stats):
    """Runs the graph in numpy. next_weight(shape) gives the layer's next weight (dense-file order);
    next_stats(n) the next BatchNorm's (mean, var). Returns {loss top: head output}."""
    tensors = dict(inputs)
    outputs = {}
    for layer_ in graph[1:]:
        t = layer_["type"]
        if "Embedding" in t:
            continue
        bottoms = [layer_["bottom"]] if isinstance(layer_["bottom"], str) else layer_["bottom"]
        tops = [layer_["top"]] if isinstance(layer_["top"], str) else layer_["top"]
        if t.endswith("Loss"):
            logit = tensors[bottoms[0]].astype(np.float64)
            outputs[tops[0]] = (np.exp(logit) / np.exp(logit).sum(axis=1, keepdims=True) if t == "CrossEntropyLoss"
                                else 1.0 / (1.0 + np.exp(-logit)))
            continue
        x = tensors[bottoms[0]]
        ws = [next_weight(shape) for shape in weight_shapes(layer_, x.shape[1:])]
        ys = None
        if t == "Reshape":
            y = x.reshape(x.shape[0], -1) if not layer_.get("time_step") else x.reshape(x.shape[0], layer_["time_step"], -1)
        elif t == "Concat":
            y = np.concatenate([tensors[b] for b in bottoms], axis=layer_.get("axis", 1))
        elif t == "Slice":
            ys = [x[:, a:b] for a, b in layer_["ranges"]]
        elif t in ("InnerProduct", "FusedInnerProduct"):
            y = x @ ws[0] + ws[1]
            if t == "FusedInnerProduct":
                y = np.maximum(y, 0)
        elif t == "ReLU":
            y = np.maximum(x, 0)
        elif t == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-x))
        elif t == "Dropout":
            y = x
        elif t == "BatchNorm":
            mean, var = next_stats(x.shape[1])
            y = (x - mean) / np.sqrt(var + layer_["bn_param"]["eps"]) * ws[0] + ws[1]
        elif t == "MultiCross":
            x0, y = x, x
            for k in range(0, len(ws), 2):
                y = x0 * (y @ ws[k].reshape(-1, 1)) + ws[k + 1] + y
        elif t == "ElementwiseMultiply":
            y = x
            for b in bottoms[1:]:
                y = y * tensors[b]
        elif t == "Add":
            y = sum(tensors[b] for b in bottoms)
        elif t == "ReduceSum":
            y = x.sum(axis=layer_.get("axis", 1), keepdims=True)
        elif t == "FmOrder2":
            v = x.reshape(x.shape[0], -1, layer_["out_dim"])
            y = 0.5 * (v.sum(axis=1) ** 2 - (v ** 2).sum(axis=1))
        elif t == "Interaction":
            dense, emb = tensors[bottoms[0]], tensors[bottoms[1]]
            rows = np.concatenate([dense[:, None, :], emb], axis=1)
            n = rows.shape[1]
            dots = [np.einsum("bd,bd->b", rows[:, i], rows[:, j]) for i in range(1, n) for j in range(i)]
            y = np.concatenate([dense, np.stack(dots, axis=1), np.zeros((dense.shape[0], 1))], axis=1)
        elif t == "WeightMultiply":
            y = (x.reshape(x.shape[0], -1, 1) * ws[0][None, :, :]).reshape(x.shape[0], -1)
        else:
            raise SystemExit(f"fixture: no reference for {t}")
        for top, value in zip(tops, ys if ys is not None else [y]):
            tensors[top] = value.astype(np.float64)
    return outputs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for model, graph in graphs().items():
        directory = os.path.join(args.out, model)
        os.makedirs(directory, exist_ok=True)
        legacy = model == "dcn"  # pre-v3.1: single-file sparse model with 4-byte keys, named by the solver
        document = {"layers": graph}
        if legacy:
            document = {"solver": {"input_key_type": "I32", "max_iter": 0}, "layers": graph}
        with open(os.path.join(directory, f"{model}.json"), "w") as f:
            json.dump(document, f, indent=2, sort_keys=True)

        slots = {s["top"]: s["slot_num"] for s in graph[0]["sparse"]}
        embeddings = [layer_ for layer_ in graph[1:] if "Embedding" in layer_["type"]]
        inputs = {"dense": rng.standard_normal((B, graph[0]["dense"]["dense_dim"])).astype(np.float32)}
        for e in embeddings:
            vec = e["sparse_embedding_hparam"]["embedding_vec_size"]
            inputs[e["top"]] = rng.standard_normal((B, slots[e["bottom"]], vec)).astype(np.float32)

        # weights and BatchNorm statistics are drawn as the forward pass asks for them, in dense-file order
        weights, stats = [], []

        def new_weight(shape):
            weights.append((rng.standard_normal(shape) * 0.5).astype(np.float32))
            return weights[-1].astype(np.float64)

        def new_stats(n):
            # %f, as HugeCTR prints them (B.1.4): the reference uses the printed values
            mean = [float(f"{v:f}") for v in rng.standard_normal(n) * 0.1]
            var = [float(f"{v:f}") for v in rng.uniform(0.5, 1.5, n)]
            stats.append({"type": "BatchNorm", "mean": mean, "var": var})
            return np.array(mean, np.float32).astype(np.float64), np.array(var, np.float32).astype(np.float64)

        outputs = forward(graph, {k: v.astype(np.float64) for k, v in inputs.items()}, new_weight, new_stats)
        with open(os.path.join(directory, f"{model}_dense_0.model"), "wb") as f:
            for w in weights:
                f.write(w.astype("<f4").tobytes())
        if stats:
            with open(os.path.join(directory, f"{model}_dense_0.model.ntp.json"), "w") as f:
                f.write(json.dumps({"layers": stats}, indent=1))

        for i, e in enumerate(embeddings):
            vec = e["sparse_embedding_hparam"]["embedding_vec_size"]
            keys = rng.choice(np.iinfo(np.int32).max if legacy else 2 ** 40, size=args.rows, replace=False).astype(np.int64)
            vectors = rng.standard_normal((args.rows, vec)).astype(np.float32)
            localized = e["type"].startswith("Localized")
            slot_ids = (keys % slots[e["bottom"]]).astype(np.uint64)
            path = os.path.join(directory, f"{model}{i}_sparse_0.model")
            if legacy:
                record = np.dtype([("key", "<u4")] + ([("slot", "<u8")] if localized else []) + [("vec", "<f4", (vec,))])
                rows = np.zeros(args.rows, dtype=record)
                rows["key"] = keys.astype(np.uint32)
                if localized:
                    rows["slot"] = slot_ids
                rows["vec"] = vectors
                rows.tofile(path)
            else:
                os.makedirs(path, exist_ok=True)
                keys.astype("<i8").tofile(os.path.join(path, "key"))
                vectors.astype("<f4").tofile(os.path.join(path, "emb_vector"))
                if localized:
                    slot_ids.astype("<u8").tofile(os.path.join(path, "slot_id"))

        np.savez(os.path.join(directory, "reference.npz"), **inputs, **{f"out:{k}": v for k, v in outputs.items()})
        print(f"{model}: {sum(w.size for w in weights)} dense floats, {len(stats)} BatchNorm, {len(embeddings)} tables, "
              f"outputs {list(outputs)}")


if __name__ == "__main__":
    main()
