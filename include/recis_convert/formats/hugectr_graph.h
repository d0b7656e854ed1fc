// A HugeCTR model graph (Model.graph_to_json, torcheasyrec-hugectr.md B.3), read once into a checked, typed
// description: the inputs, the embeddings, the dense layers with the shape of every tensor, and the layout of
// the dense weights file (B.2.5: float32, the trainable layers' weights in layer order, no header). Pure: the
// TorchScript network is built from this description by the dense plugin.
//
// The supported dense layers are every type hugectr2onnx converts (the table in hugectr_layers.cpp, also README's);
// each layer's shapes, weight order and computation follow hugectr2onnx's hugectr_loader.py and graph_builder.py.
// The losses are replaced by their heads (BinaryCrossEntropyLoss and MultiCrossEntropyLoss -> sigmoid,
// CrossEntropyLoss -> softmax), one output each. Any other type is an error that names it and lists these.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recis_convert/common/error.h"

namespace recis_convert {

using HugectrShape = std::vector<uint64_t>;

// A tensor of the graph: [batch x rows_per_sample, dims...]. rows_per_sample is 1 but for the tensors of DIN's
// attention, where FusedReshapeConcat, Scale (axis 1) and Reshape put one row per history item: [batch x T, d].
struct HugectrTensor {
  uint64_t rows_per_sample = 1;
  HugectrShape dims;  // after the leading dimension
  bool operator==(const HugectrTensor& o) const { return rows_per_sample == o.rows_per_sample && dims == o.dims; }
};

struct HugectrEmbedding {
  std::string type;    // DistributedSlotSparseEmbeddingHash or LocalizedSlotSparseEmbeddingHash
  std::string bottom;  // the Data layer's sparse input
  std::string top;     // also the table's name
  uint64_t slot_num = 0;
  uint64_t vec_size = 0;
  std::string combiner;  // "sum" or "mean"
  bool localized = false;
};

// The dense layer types there is TorchScript for. One table in hugectr_layers.cpp maps the graph's spellings to
// these; the parser and the dense plugin switch on them.
enum class HugectrLayerType {
  kReshape, kConcat, kSlice, kInnerProduct, kFusedInnerProduct, kReLU, kSigmoid, kDropout, kBatchNorm, kMultiCross,
  kElementwiseMultiply, kAdd, kReduceSum, kFmOrder2, kInteraction, kWeightMultiply, kELU, kFusedReshapeConcat,
  kLayerNorm, kMLP, kMatrixMultiply, kMultiHeadAttention, kPReLUDice, kReduceMean, kScale, kSequenceMask, kSoftmax,
  kSub,
};

// One fully-connected stage of an MLP layer. Its weight and bias are in the dense file even without use_bias, as
// hugectr2onnx reads them.
struct HugectrMlpStage {
  uint64_t outputs = 0;
  bool relu = true;
  bool bias = true;
};

struct HugectrLayer {
  size_t index = 0;       // in the JSON "layers" list
  HugectrLayerType type = HugectrLayerType::kReLU;
  std::string type_name;  // as the graph spells it
  std::vector<std::string> bottoms, tops;
  // The parameters of its type, read and checked once by the parser (the others keep these defaults):
  uint64_t axis = 1;                                  // Concat, ReduceSum, ReduceMean: 1 = the first after the
                                                      // batch dimension
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // Slice: [begin, end) of the last dimension, one per top
  double eps = 1e-5;                                  // BatchNorm, LayerNorm, PReLU_Dice
  double alpha = 1.0;                                 // ELU, PReLU_Dice
  uint64_t out_dim = 0;                               // FmOrder2
  uint64_t weight_slots = 0, weight_vec = 0;          // WeightMultiply: weight_dims
  std::vector<uint64_t> selected;                     // Reshape: the slots it keeps, in order (empty: all)
  std::vector<HugectrMlpStage> mlp;                   // MLP
  uint64_t heads = 1;                                 // MultiHeadAttention: num_attention_heads
  uint64_t factor = 1;                                // Scale: each value (axis 0) or row (axis 1) this many times
  bool scale_rows = false;                            // Scale: axis 1
  uint64_t sequence_from = 0, sequence_to = 0;        // SequenceMask: max_sequence_len_from, _to
};

struct HugectrWeight {
  size_t layer = 0;       // index into HugectrGraph::layers
  std::string name;       // e.g. "fc1.weight", "multicross1.w2"
  HugectrShape shape;     // row-major, as stored
  uint64_t offset = 0;    // in floats from the start of the dense file
  uint64_t count = 0;     // floats
};

struct HugectrOutput {
  std::string name;    // the loss layer's top
  std::string input;   // the tensor the head applies to
  std::string head;    // "sigmoid" or "softmax"
};

struct HugectrGraph {
  std::string dense_input;  // the Data layer's dense top; the network has no dense input when dense_dim is 0
  uint64_t dense_dim = 0;
  std::vector<HugectrEmbedding> embeddings;
  std::vector<HugectrLayer> layers;             // dense layers in order, losses excluded
  std::map<std::string, HugectrTensor> tensors;  // every tensor by name
  std::vector<HugectrWeight> weights;           // in dense-file order
  uint64_t weight_floats = 0;
  std::vector<HugectrOutput> outputs;
  size_t batch_norms = 0;                       // entries expected in <dense>.ntp.json
  uint32_t legacy_key_bytes = 8;                // legacy solver.input_key_type: I32 -> 4, I64 -> 8
};

// Parses and checks the graph JSON text (`path` names it in errors). Errors are kBadInput.
Result<HugectrGraph> parse_hugectr_graph(const std::string& text, const std::string& path);

// The dense weights file must hold exactly the graph's weights: it has no header, so this is its only check.
Status check_dense_file_size(const HugectrGraph& graph, uint64_t file_bytes, const std::string& path);

// The supported layer types, as the error for another type lists them; and as README's table (with a note each),
// which a unit test keeps equal to this.
const std::vector<std::string>& supported_hugectr_layers();
std::string hugectr_layers_markdown();

}  // namespace recis_convert
