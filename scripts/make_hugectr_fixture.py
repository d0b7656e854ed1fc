#!/usr/bin/python3
"""Writes HugeCTR-format models for the tests (HugeCTR itself cannot be installed here), with reference outputs.

    make_hugectr_fixture.py OUT_DIR [--rows 1000] [--seed 7]

For each model (OUT_DIR/<model>/): DCN, WDL, DeepFM and DLRM-style graphs (issue 8), and graphs shaped like the
models of hugectr2onnx's own test suite (test/onnx_converter_test/train_scripts/, smaller): DIN, BST, MMoE, NCF,
GMF, NeuMF and DLRM with MLP layers (issue 18):
  <model>.json                 the graph, as Model.graph_to_json writes it (torcheasyrec-hugectr.md B.3.1)
  <model>_dense_0.model        random float32 weights, the trainable layers' weights in layer order (B.2.5)
  <model>_dense_0.model.ntp.json   BatchNorm running mean/var, %f precision (B.1.4), when the graph has BatchNorm
  <model><i>_sparse_0.model/   key (int64), emb_vector (float32 x vec), slot_id (uint64, localized tables) (B.2.2)
  or a legacy single file of records {key, [slot_id], vec floats} (B.2.1; DCN uses it, with 4-byte keys)
  reference.npz                sample inputs ("dense" unless dense_dim is 0, one [B, slots, vec] array per embedding
                               top) and the expected outputs of the whole batch ("out:<name>") and of its first
                               sample alone ("out1:<name>"), one per loss layer, computed here with numpy from the
                               layer semantics of hugectr2onnx, independently of recis-convert
"""
import argparse
import json
import os

import numpy as np

B = 5  # sample batch


def data_layer(dense_dim, sparse, labels=("label",), label_dims=None):
    label_dims = label_dims or [1] * len(labels)
    label = ({"top": labels[0], "label_dim": label_dims[0]} if len(labels) == 1
             else {"top": list(labels), "label_dim": list(label_dims)})
    return {"type": "Data", "label": label, "dense": {"top": "dense", "dense_dim": dense_dim},
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
    return {"dcn": dcn, "wdl": wdl, "deepfm": deepfm, "dlrm": dlrm, **hugectr2onnx_test_models()}


def fc(bottom, top, n):
    return layer("InnerProduct", bottom, top, fc_param={"num_output": n})


def dice_tower(bottom, widths):
    """DIN's and BST's head: InnerProduct + PReLU_Dice per width, then one logit and the loss."""
    layers = []
    for i, width in enumerate(widths, 1):
        layers += [fc(bottom, f"fc_{i}", width),
                   layer("PReLU_Dice", f"fc_{i}", f"dice_{i}", prelu_dice_param={"alpha": 0.2, "eps": 1e-8})]
        bottom = f"dice_{i}"
    return layers + [fc(bottom, "fc_out", 1), layer("BinaryCrossEntropyLoss", ["fc_out", "label"], "loss")]


def hugectr2onnx_test_models():
    """Graphs shaped like hugectr2onnx's test models (train_scripts/*.py), at a smaller size."""
    T = 4  # history length (DIN, BST)
    din = [data_layer(0, [("UserID", 1), ("GoodID", T + 1), ("CateID", T + 1)]),
           embedding("UserID", "sparse_embedding_user", 4), embedding("GoodID", "sparse_embedding_good", 4),
           embedding("CateID", "sparse_embedding_cate", 4),
           layer("FusedReshapeConcat", ["sparse_embedding_good", "sparse_embedding_cate"],
                 ["FusedReshapeConcat_item_his_em", "FusedReshapeConcat_item"]),
           layer("Slice", "FusedReshapeConcat_item", ["item1", "item2"], ranges=[[0, 8], [0, 8]]),
           layer("Slice", "FusedReshapeConcat_item_his_em", [f"item_his{k}" for k in range(1, 6)],
                 ranges=[[0, 8]] * 5),
           layer("Scale", "item1", "Scale_item", scale_param={"axis": 1, "factor": float(T)}),
           layer("Slice", "Scale_item", ["Scale_item1", "Scale_item2", "Scale_item3"], ranges=[[0, 8]] * 3),
           layer("Sub", ["Scale_item1", "item_his1"], "sub_ih"),
           layer("ElementwiseMultiply", ["Scale_item2", "item_his2"], "ElementwiseMul_i"),
           layer("Concat", ["Scale_item3", "item_his3", "sub_ih", "ElementwiseMul_i"], "concat_i_h", axis=1),
           fc("concat_i_h", "fc_att_i2", 10), fc("fc_att_i2", "fc_att_i3", 1),
           layer("Reshape", "fc_att_i3", "reshape_score", leading_dim=T, time_step=0),
           layer("Softmax", "reshape_score", "softmax_att_i", factor=1.0),
           layer("Scale", "softmax_att_i", "Scale_i", scale_param={"axis": 0, "factor": 8.0}),
           layer("Reshape", "item_his4", "reshape_item_his", leading_dim=8 * T, time_step=0),
           layer("ElementwiseMultiply", ["Scale_i", "reshape_item_his"], "ElementwiseMul_ih"),
           layer("ReduceSum", "ElementwiseMul_ih", "reduce_ih", axis=1),
           layer("Reshape", "item_his5", "reshape_his", leading_dim=8, time_step=T),
           layer("ReduceMean", "reshape_his", "reduce_item_his", axis=1),
           layer("Reshape", "reduce_item_his", "reshape_reduce_item_his", leading_dim=8, time_step=0),
           layer("Reshape", "sparse_embedding_user", "reshape_user", leading_dim=4, time_step=0),
           layer("Concat", ["reshape_user", "reshape_reduce_item_his", "reduce_ih", "item2"], "concat_din_i", axis=1),
           *dice_tower("concat_din_i", (12, 6))]
    # BST; with two branches hugectr2onnx's test model lacks, so that MatrixMultiply (3-D and 4-D) and the masked
    # Softmax are exercised too: attention pooling of the encoder output, and a feature of the mask itself
    bst = [data_layer(1, [("UserID", 1), ("GoodID", T), ("Target_Good", 1), ("CateID", T), ("Target_Cate", 1)]),
           embedding("UserID", "sparse_embedding_user", 6), embedding("GoodID", "sparse_embedding_good", 4),
           embedding("Target_Good", "sparse_embedding_item_good", 4), embedding("CateID", "sparse_embedding_cate", 4),
           embedding("Target_Cate", "sparse_embedding_item_cate", 4),
           layer("SequenceMask", ["dense", "dense"], "sequence_mask", max_sequence_len_from=T, max_sequence_len_to=T),
           layer("Concat", ["sparse_embedding_cate", "sparse_embedding_good"], "hist_emb_list", axis=2),
           fc("hist_emb_list", "query_emb", 8), fc("hist_emb_list", "key_emb", 8), fc("hist_emb_list", "value_emb", 8),
           layer("MultiHeadAttention", ["query_emb", "key_emb", "value_emb", "sequence_mask"], "attention_out",
                 num_attention_heads=2, transpose_b=False),
           layer("Add", ["attention_out", "query_emb"], "attention_add_shortcut"),
           layer("LayerNorm", "attention_add_shortcut", "attention_layer_norm", ln_param={"eps": 1e-5}),
           fc("attention_layer_norm", "attention_ffn1", 16), fc("attention_ffn1", "attention_ffn2", 8),
           layer("Add", ["attention_ffn2", "attention_layer_norm"], "attention_ffn_shortcut"),
           layer("LayerNorm", "attention_ffn_shortcut", "attention_ffn_layer_norm", ln_param={"eps": 1e-3}),
           layer("ReduceMean", "attention_ffn_layer_norm", "reduce_attention_ffn_layer_norm", axis=1),
           layer("Reshape", "reduce_attention_ffn_layer_norm", "reshape_attention_out", leading_dim=8, time_step=0),
           fc("attention_ffn_layer_norm", "pool_score", 1),
           layer("Reshape", "pool_score", "pool_weights", leading_dim=T, time_step=1),
           layer("MatrixMultiply", ["pool_weights", "attention_ffn_layer_norm"], "pooled"),
           layer("Reshape", "pooled", "reshape_pooled", leading_dim=8, time_step=0),
           layer("MatrixMultiply", ["sequence_mask", "sequence_mask"], "mask_square"),
           layer("Softmax", ["mask_square", "sequence_mask"], "mask_softmax", factor=1.0),
           layer("Reshape", "mask_softmax", "reshape_mask", leading_dim=T * T, time_step=0),
           layer("Reshape", "sparse_embedding_user", "reshape_user", leading_dim=6, time_step=0),
           layer("Reshape", "sparse_embedding_item_good", "reshape_item_good", leading_dim=4, time_step=0),
           layer("Reshape", "sparse_embedding_item_cate", "reshape_item_cate", leading_dim=4, time_step=0),
           layer("Concat", ["reshape_attention_out", "reshape_pooled", "reshape_user", "reshape_item_good",
                            "reshape_item_cate", "reshape_mask"], "dnn_input", axis=1),
           *dice_tower("dnn_input", (16, 8))]
    mmoe = [data_layer(0, [("data", 4)], labels=("50k_label", "married_label")),
            embedding("data", "embedding", 4, localized=True),
            layer("Reshape", "embedding", "reshape_embedding", leading_dim=16, time_step=0),
            layer("Slice", "reshape_embedding", ["expert_emb", "gating_emb"], ranges=[[0, 16], [0, 16]]),
            layer("Slice", "expert_emb", ["expert0_in", "expert1_in", "expert2_in"], ranges=[[0, 16]] * 3)]
    for e in range(3):
        mmoe += [fc(f"expert{e}_in", f"e{e}_fc1", 8), layer("ReLU", f"e{e}_fc1", f"e{e}_relu1"),
                 layer("Dropout", f"e{e}_relu1", f"e{e}_dropout1", rate=0.5), fc(f"e{e}_dropout1", f"e{e}_fc2", 4),
                 layer("ReLU", f"e{e}_fc2", f"e{e}_relu2"),
                 layer("Slice", f"e{e}_relu2", [f"e{e}_out_A", f"e{e}_out_B"], ranges=[[0, 4], [0, 4]])]
    mmoe.append(layer("Slice", "gating_emb", ["gateA_in", "gateB_in"], ranges=[[0, 16], [0, 16]]))
    for g in "AB":
        mmoe += [fc(f"gate{g}_in", f"g{g}_dense", 3), layer("Softmax", f"g{g}_dense", f"g{g}_softmax", factor=1.0),
                 layer("Slice", f"g{g}_softmax", [f"g{g}_e{e}" for e in range(3)], ranges=[[0, 1], [1, 2], [2, 3]])]
        for e in range(3):
            mmoe += [layer("Scale", f"g{g}_e{e}", f"g{g}_e{e}_scaled", scale_param={"axis": 0, "factor": 4.0}),
                     layer("ElementwiseMultiply", [f"e{e}_out_{g}", f"g{g}_e{e}_scaled"], f"e{e}_{g}_gated")]
        mmoe.append(layer("Add", [f"e{e}_{g}_gated" for e in range(3)], f"tower_{g}_input"))
    for g in "AB":
        mmoe += [fc(f"tower_{g}_input", f"{g}_fc1", 4), layer("ReLU", f"{g}_fc1", f"{g}_relu1"),
                 fc(f"{g}_relu1", f"{g}_fc2", 1)]
    mmoe += [layer("BinaryCrossEntropyLoss", ["A_fc2", "50k_label"], "lossA"),
             layer("BinaryCrossEntropyLoss", ["B_fc2", "married_label"], "lossB")]
    # NCF with an ELU in place of its last ReLU, so that ELU is exercised
    ncf = [data_layer(0, [("data", 2)]), embedding("data", "mlp_embedding", 8),
           layer("Reshape", "mlp_embedding", "reshape_mlp", leading_dim=16, time_step=0),
           fc("reshape_mlp", "fc1", 16), layer("ReLU", "fc1", "relu1"), layer("Dropout", "relu1", "dropout1", rate=0.5),
           fc("dropout1", "fc2", 8), layer("ELU", "fc2", "elu2", elu_param={"alpha": 0.7}),
           fc("elu2", "mlp_out", 1), layer("BinaryCrossEntropyLoss", ["mlp_out", "label"], "loss")]
    gmf = [data_layer(0, [("data", 2)]), embedding("data", "gmf_embedding", 8),
           layer("Reshape", "gmf_embedding", "reshape1", leading_dim=16, time_step=0),
           layer("Slice", "reshape1", ["user", "item"], ranges=[[0, 7], [8, 15]]),
           layer("ElementwiseMultiply", ["user", "item"], "multiply1"), fc("multiply1", "gmf_out", 1),
           layer("BinaryCrossEntropyLoss", ["gmf_out", "label"], "loss")]
    neumf = [data_layer(0, [("data", 2)]), embedding("data", "mixed_embedding", 12),
             layer("Reshape", "mixed_embedding", "reshape_embedding", leading_dim=24, time_step=0),
             layer("Slice", "reshape_embedding", ["mlp_embedding", "gmf_embedding"], ranges=[[0, 15], [16, 23]]),
             fc("mlp_embedding", "fc1", 8), layer("ReLU", "fc1", "relu1"), fc("relu1", "fc2", 4),
             layer("ReLU", "fc2", "relu2"), layer("Dropout", "relu2", "mlp_dropout", rate=0.5),
             layer("Slice", "gmf_embedding", ["user", "item"], ranges=[[0, 3], [4, 7]]),
             layer("ElementwiseMultiply", ["user", "item"], "gmf_multiply"),
             layer("Concat", ["gmf_multiply", "mlp_dropout"], "concat", axis=1), fc("concat", "neumf_out", 1),
             layer("BinaryCrossEntropyLoss", ["neumf_out", "label"], "loss")]
    dlrm_mlp = [data_layer(3, [("data1", 3)]), embedding("data1", "sparse_embedding1", 4),
                layer("MLP", "dense", "mlp1", mlp_param={"num_output": 1, "num_outputs": [8, 4], "use_bias": True,
                                                         "activation": "Relu"}),
                layer("Interaction", ["mlp1", "sparse_embedding1"], "interaction1"),
                layer("MLP", "interaction1", "mlp2", mlp_param={"num_output": 1, "num_outputs": [8, 4, 1],
                                                                "biases": [True, False, True],
                                                                "activations": ["Relu", "Relu", "None"]}),
                layer("BinaryCrossEntropyLoss", ["mlp2", "label"], "loss")]
    # not one of hugectr2onnx's test models: the two loss types none of them uses, as two heads of one network
    losses = [data_layer(2, [("data", 2)], labels=("click", "tags"), label_dims=(1, 3)),
              embedding("data", "sparse_embedding1", 4),
              layer("Reshape", "sparse_embedding1", "reshape1", leading_dim=8, time_step=0),
              layer("Concat", ["reshape1", "dense"], "concat1", axis=1), fc("concat1", "fc1", 8),
              layer("ReLU", "fc1", "relu1"), layer("Slice", "relu1", ["click_in", "tags_in"], ranges=[[0, 8], [0, 8]]),
              fc("click_in", "click_logits", 2), fc("tags_in", "tags_logits", 3),
              layer("CrossEntropyLoss", ["click_logits", "click"], "click_loss"),
              layer("MultiCrossEntropyLoss", ["tags_logits", "tags"], "tags_loss", target_weight_vec=[0.5, 0.3, 0.2])]
    return {"din": din, "bst": bst, "mmoe": mmoe, "ncf": ncf, "gmf": gmf, "neumf": neumf, "dlrm_mlp": dlrm_mlp,
            "losses": losses}


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
    if t == "LayerNorm":
        return [(x[-1],), (x[-1],)]
    if t == "MLP":  # every stage's weight and bias, even a stage without bias (hugectr_loader.py reads both)
        sizes = [x[-1]] + layer_["mlp_param"]["num_outputs"]
        return [shape for a, b in zip(sizes, sizes[1:]) for shape in ((a, b), (1, b))]
    return []


def softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


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
        if t == "Reshape":  # the leading dimension follows from the others, as HugeCTR's Reshape may change it
            shape = (-1, layer_["leading_dim"]) if not layer_.get("time_step") else (-1, layer_["time_step"],
                                                                                      layer_["leading_dim"])
            y = x[:, layer_["selected"], :].reshape(x.shape[0], -1) if "selected" in layer_ else x.reshape(shape)
        elif t == "Concat":
            y = np.concatenate([tensors[b] for b in bottoms], axis=layer_.get("axis", 1))
        elif t == "Slice":
            ys = [x[..., a:b] for a, b in layer_["ranges"]]
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
        elif t == "ELU":
            y = np.where(x > 0, x, layer_["elu_param"]["alpha"] * np.expm1(x))
        elif t == "Sub":
            y = x - tensors[bottoms[1]]
        elif t == "PReLU_Dice":  # Dice with the statistics of the batch, as hugectr2onnx computes them
            p = layer_["prelu_dice_param"]
            gate = 1.0 / (1.0 + np.exp(-(x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + p["eps"])))
            y = gate * x + (1.0 - gate) * p["alpha"] * x
        elif t == "LayerNorm":
            y = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + layer_["ln_param"]["eps"])
            y = y * ws[0] + ws[1]
        elif t == "MLP":
            p = layer_["mlp_param"]
            count = len(p["num_outputs"])
            acts = p.get("activations", [p.get("activation", "Relu")] * count)
            biases = p.get("biases", [p.get("use_bias", True)] * count)
            y = x
            for k in range(count):
                y = y @ ws[2 * k] + (ws[2 * k + 1] if biases[k] else 0)
                y = np.maximum(y, 0) if acts[k] == "Relu" else y
        elif t == "Scale":  # axis 0: each value factor times in place; axis 1: each row factor times
            p = layer_["scale_param"]
            y = np.repeat(x, int(p["factor"]), axis=1 if p["axis"] == 0 else 0)
        elif t == "ReduceMean":
            y = x.mean(axis=layer_["axis"], keepdims=True)
        elif t == "Softmax":  # over every value of a row (ONNX opset-10 Softmax, axis 1); the mask sets -10000
            z = x if len(bottoms) == 1 else x + (1.0 - tensors[bottoms[1]]) * -10000.0
            y = softmax(z.reshape(z.shape[0], -1), axis=1).reshape(z.shape)
        elif t == "FusedReshapeConcat":
            joined = np.concatenate([tensors[b] for b in bottoms], axis=2)
            ys = [joined[:, :-1, :].reshape(-1, joined.shape[2]), joined[:, -1, :]]
        elif t == "MatrixMultiply":
            y = x @ tensors[bottoms[1]]
        elif t == "SequenceMask":
            lengths_from, lengths_to = tensors[bottoms[0]], tensors[bottoms[1]]
            inside_from = np.arange(layer_["max_sequence_len_from"])[None, :] < lengths_from
            inside_to = np.arange(layer_["max_sequence_len_to"])[None, :] < lengths_to
            y = (inside_from[:, :, None] & inside_to[:, None, :])[:, None].astype(np.float64)
        elif t == "MultiHeadAttention":  # head h attends with hidden columns [h d, (h + 1) d)
            q, k, v = (tensors[b] for b in bottoms[:3])
            heads = layer_["num_attention_heads"]
            d = q.shape[2] // heads
            y = np.zeros_like(q)
            for h in range(heads):
                cols = slice(h * d, (h + 1) * d)
                score = q[:, :, cols] @ k[:, :, cols].transpose(0, 2, 1) / np.sqrt(np.float32(d))
                if len(bottoms) == 4:
                    score = score + (1.0 - tensors[bottoms[3]][:, 0]) * -10000.0
                y[:, :, cols] = softmax(score, axis=-1) @ v[:, :, cols]
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
        dense_dim = graph[0]["dense"]["dense_dim"]
        inputs = {}
        if dense_dim > 0:
            inputs["dense"] = rng.standard_normal((B, dense_dim)).astype(np.float32)
        if model == "bst":  # its dense input is the history's length, 1..T
            inputs["dense"] = rng.integers(1, 5, (B, 1)).astype(np.float32)
        for e in embeddings:
            vec = e["sparse_embedding_hparam"]["embedding_vec_size"]
            inputs[e["top"]] = rng.standard_normal((B, slots[e["bottom"]], vec)).astype(np.float32)

        # weights and BatchNorm statistics are drawn as the forward pass asks for them, in dense-file order
        weights, stats = [], []

        def new_weight(shape):
            scale = 0.5 if len(shape) < 2 else min(0.5, 1.0 / np.sqrt(shape[0]))  # keeps wide layers' outputs O(1)
            weights.append((rng.standard_normal(shape) * scale).astype(np.float32))
            return weights[-1].astype(np.float64)

        def new_stats(n):
            # %f, as HugeCTR prints them (B.1.4): the reference uses the printed values
            mean = [float(f"{v:f}") for v in rng.standard_normal(n) * 0.1]
            var = [float(f"{v:f}") for v in rng.uniform(0.5, 1.5, n)]
            stats.append({"type": "BatchNorm", "mean": mean, "var": var})
            return np.array(mean, np.float32).astype(np.float64), np.array(var, np.float32).astype(np.float64)

        outputs = forward(graph, {k: v.astype(np.float64) for k, v in inputs.items()}, new_weight, new_stats)
        # the first sample alone, with the same weights: a layer with batch statistics (PReLU_Dice) gives it
        # another output than the first row of the batch's
        drawn_weights, drawn_stats = iter(weights), iter(stats)

        def same_stats(n):
            entry = next(drawn_stats)
            return tuple(np.array(entry[key], np.float32).astype(np.float64) for key in ("mean", "var"))

        outputs1 = forward(graph, {k: v[:1].astype(np.float64) for k, v in inputs.items()},
                           lambda shape: next(drawn_weights).astype(np.float64), same_stats)
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

        np.savez(os.path.join(directory, "reference.npz"), **inputs, **{f"out:{k}": v for k, v in outputs.items()},
                 **{f"out1:{k}": v for k, v in outputs1.items()})
        print(f"{model}: {sum(w.size for w in weights)} dense floats, {len(stats)} BatchNorm, {len(embeddings)} tables, "
              f"outputs {list(outputs)}")


if __name__ == "__main__":
    main()
