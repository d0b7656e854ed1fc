#include "recis_convert/formats/hugectr_layers.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace recis_convert {
namespace {

// A graph with no dense input, a history embedding [batch, 5, 4] ("his"), a user embedding [batch, 1, 6] ("user"),
// then `layers` (JSON objects, comma-separated) and a loss on `output`.
std::string graph_with(const std::string& layers, const std::string& output, uint64_t dense_dim = 0) {
  return R"({"layers": [
   {"type": "Data", "dense": {"top": "dense", "dense_dim": )" + std::to_string(dense_dim) + R"(},
    "sparse": [{"top": "h", "slot_num": 5}, {"top": "u", "slot_num": 1}]},
   {"type": "DistributedSlotSparseEmbeddingHash", "bottom": "h", "top": "his",
    "sparse_embedding_hparam": {"embedding_vec_size": 4}},
   {"type": "DistributedSlotSparseEmbeddingHash", "bottom": "u", "top": "user",
    "sparse_embedding_hparam": {"embedding_vec_size": 6}},
   )" + layers + R"(,
   {"type": "BinaryCrossEntropyLoss", "bottom": [")" + output + R"(", "label"], "top": "loss"}]})";
}

HugectrGraph parsed(const std::string& text) {
  auto graph = parse_hugectr_graph(text, "g.json");
  EXPECT_TRUE(graph) << graph.error().describe();
  return graph ? graph.value() : HugectrGraph{};
}

std::string error_of(const std::string& text) {
  auto graph = parse_hugectr_graph(text, "g.json");
  EXPECT_FALSE(graph);
  return graph ? std::string() : graph.error().message;
}

TEST(HugectrLayersTest, DinAttentionFoldsTheHistoryIntoTheBatchAndBack) {
  const HugectrGraph g = parsed(graph_with(R"(
   {"type": "FusedReshapeConcat", "bottom": ["his", "his"], "top": ["history", "item"]},
   {"type": "Scale", "bottom": "item", "top": "items", "scale_param": {"axis": 1, "factor": 4.0}},
   {"type": "Sub", "bottom": ["items", "history"], "top": "diff"},
   {"type": "InnerProduct", "bottom": "diff", "top": "score", "fc_param": {"num_output": 1}},
   {"type": "Reshape", "bottom": "score", "top": "scores", "leading_dim": 4, "time_step": 0},
   {"type": "Softmax", "bottom": "scores", "top": "weights"},
   {"type": "Scale", "bottom": "weights", "top": "wide", "scale_param": {"axis": 0, "factor": 8}},
   {"type": "ReduceMean", "bottom": "wide", "top": "out", "axis": 1})",
                                           "out"));
  EXPECT_EQ(g.dense_dim, 0u);
  EXPECT_EQ(g.tensors.count("dense"), 0u);  // dense_dim 0: no dense input
  EXPECT_EQ(g.tensors.at("history"), (HugectrTensor{4, {8}}));
  EXPECT_EQ(g.tensors.at("item"), (HugectrTensor{1, {8}}));
  EXPECT_EQ(g.tensors.at("items"), (HugectrTensor{4, {8}}));
  EXPECT_EQ(g.tensors.at("score"), (HugectrTensor{4, {1}}));
  EXPECT_EQ(g.tensors.at("scores"), (HugectrTensor{1, {4}}));
  EXPECT_EQ(g.tensors.at("wide"), (HugectrTensor{1, {32}}));
  EXPECT_EQ(g.tensors.at("out"), (HugectrTensor{1, {1}}));
  EXPECT_TRUE(g.layers[1].scale_rows);
  EXPECT_EQ(g.layers[1].factor, 4u);
  EXPECT_FALSE(g.layers[6].scale_rows);
}

TEST(HugectrLayersTest, BstEncoderShapesAndWeights) {
  const HugectrGraph g = parsed(graph_with(R"(
   {"type": "SequenceMask", "bottom": ["dense", "dense"], "top": "mask", "max_sequence_len_from": 5,
    "max_sequence_len_to": 5},
   {"type": "Concat", "bottom": ["his", "his"], "top": "hist", "axis": 2},
   {"type": "InnerProduct", "bottom": "hist", "top": "q", "fc_param": {"num_output": 6}},
   {"type": "MultiHeadAttention", "bottom": ["q", "q", "q", "mask"], "top": "att", "num_attention_heads": 3},
   {"type": "LayerNorm", "bottom": "att", "top": "ln", "ln_param": {"eps": 0.001}},
   {"type": "MatrixMultiply", "bottom": ["mask", "mask"], "top": "mm"},
   {"type": "Softmax", "bottom": ["mm", "mask"], "top": "sm"},
   {"type": "Reshape", "bottom": "sm", "top": "flat", "leading_dim": 25},
   {"type": "Reshape", "bottom": "ln", "top": "lnflat", "leading_dim": 30},
   {"type": "Concat", "bottom": ["flat", "lnflat"], "top": "out"})",
                                           "out", 1));
  EXPECT_EQ(g.tensors.at("mask").dims, (HugectrShape{1, 5, 5}));
  EXPECT_EQ(g.tensors.at("hist").dims, (HugectrShape{5, 8}));
  EXPECT_EQ(g.tensors.at("q").dims, (HugectrShape{5, 6}));
  EXPECT_EQ(g.tensors.at("att").dims, (HugectrShape{5, 6}));
  EXPECT_EQ(g.tensors.at("mm").dims, (HugectrShape{1, 5, 5}));
  EXPECT_EQ(g.tensors.at("out").dims, (HugectrShape{55}));
  EXPECT_EQ(g.layers[3].heads, 3u);
  EXPECT_DOUBLE_EQ(g.layers[4].eps, 0.001);
  // q: weight [8, 6], bias [1, 6]; LayerNorm: gamma, beta of the last dimension
  ASSERT_EQ(g.weights.size(), 4u);
  EXPECT_EQ(g.weights[2].name, "ln.gamma");
  EXPECT_EQ(g.weights[2].shape, (HugectrShape{6}));
  EXPECT_EQ(g.weights[3].offset, 8u * 6 + 6 + 6);
}

TEST(HugectrLayersTest, MlpStagesAndTheirWeightsInFileOrder) {
  const HugectrGraph g = parsed(graph_with(R"(
   {"type": "Reshape", "bottom": "his", "top": "flat", "selected": [4, 0]},
   {"type": "MLP", "bottom": "flat", "top": "mlp", "mlp_param": {"num_outputs": [3, 1], "biases": [false, true],
    "activations": ["Relu", "None"]}})",
                                           "mlp"));
  EXPECT_EQ(g.layers[0].selected, (std::vector<uint64_t>{4, 0}));
  EXPECT_EQ(g.tensors.at("flat").dims, (HugectrShape{8}));
  ASSERT_EQ(g.layers[1].mlp.size(), 2u);
  EXPECT_TRUE(g.layers[1].mlp[0].relu);
  EXPECT_FALSE(g.layers[1].mlp[0].bias);
  EXPECT_FALSE(g.layers[1].mlp[1].relu);
  ASSERT_EQ(g.weights.size(), 4u);  // every stage's bias is in the file, used or not
  EXPECT_EQ(g.weights[1].name, "mlp.bias0");
  EXPECT_EQ(g.weight_floats, 8u * 3 + 3 + 3 * 1 + 1);
}

TEST(HugectrLayersTest, BadLayersAreOneLineErrorsNamingTheLayer) {
  struct Case {
    std::string layers, output;
    std::string says;
  } cases[] = {
      {R"({"type": "InnerProduct", "bottom": "his", "top": "q", "fc_param": {"num_output": 6}},
          {"type": "MultiHeadAttention", "bottom": ["q", "q", "q"], "top": "att", "num_attention_heads": 4})",
       "att", "layer 4 (MultiHeadAttention): hidden size 6 is not divisible by num_attention_heads 4"},
      {R"({"type": "MultiHeadAttention", "bottom": ["his", "his", "user"], "top": "att"})", "att",
       "needs query [batch, from, hidden] and key, value [batch, to, hidden]"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "leading_dim": 3})", "r",
       "reshaping [batch, 5, 4] (20 values per sample) to leading_dim 3 would not keep whole samples"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "selected": [5]})", "r",
       "selected slot 5 is not a slot of [batch, 5, 4]"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "shape": [-1, 20]})", "r", "\"shape\" is not supported"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "leading_dim": 4},
          {"type": "Scale", "bottom": "r", "top": "s", "scale_param": {"axis": 2, "factor": 2}})",
       "s", "layer 4 (Scale): needs scale_param.axis 0 or 1"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "leading_dim": 4})", "r",
       "layer 4 (BinaryCrossEntropyLoss): its input [batch x 5, 4] does not have one row per sample"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "leading_dim": 4},
          {"type": "Reshape", "bottom": "user", "top": "v", "leading_dim": 6},
          {"type": "Concat", "bottom": ["r", "v"], "top": "c"})",
       "c", "bottoms [batch x 5, 4] and [batch, 6] have different leading dimensions"},
      {R"({"type": "Sub", "bottom": ["his"], "top": "d"})", "d", "layer 3 (Sub): needs 2 bottoms"},
      {R"({"type": "MatrixMultiply", "bottom": ["his", "his"], "top": "m"})", "m",
       "[batch, 5, 4] x [batch, 5, 4] is not a batched matrix product"},
      {R"({"type": "Reshape", "bottom": "his", "top": "r", "leading_dim": 20},
          {"type": "MLP", "bottom": "r", "top": "m", "mlp_param": {"num_outputs": [2], "activation": "Tanh"}})",
       "m", "activation \"Tanh\" is not Relu or None"},
      {R"({"type": "FusedReshapeConcat", "bottom": ["his", "user"], "top": ["a", "b"]})", "b",
       "needs [batch, T + 1, d] inputs with the same T + 1 >= 2, not [batch, 1, 6]"},
      {R"({"type": "SequenceMask", "bottom": ["his", "his"], "top": "m", "max_sequence_len_from": 5,
           "max_sequence_len_to": 5})",
       "m", "needs two [batch, 1] lengths"},
      {R"({"type": "Reshape", "bottom": "dense", "top": "r", "leading_dim": 4})", "r",
       "bottom \"dense\" is not produced by any earlier layer"},  // dense_dim 0
      {R"({"type": "ELU", "bottom": "his", "top": "e", "elu_param": {"alpha": "big"}})", "e",
       "layer 3 (ELU): \"alpha\" must be a number >= 0"},
  };
  for (const auto& c : cases) {
    const std::string message = error_of(graph_with(c.layers, c.output));
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(HugectrLayersTest, TheTableHasEveryTypeOnce) {
  std::set<HugectrLayerType> types;
  for (const auto& entry : hugectr_layer_types()) {
    EXPECT_TRUE(types.insert(entry.type).second) << entry.spelling;
    EXPECT_EQ(*hugectr_layer_type_named(entry.spelling), entry.type);
  }
  EXPECT_EQ(types.size(), static_cast<size_t>(HugectrLayerType::kSub) + 1);
  EXPECT_EQ(hugectr_layer_type_named("GRU"), nullptr);
  EXPECT_EQ(tensor_text({10, {36}}), "[batch x 10, 36]");
}

}  // namespace
}  // namespace recis_convert
