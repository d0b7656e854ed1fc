#include "recis_convert/formats/hugectr_graph.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace recis_convert {
namespace {

// The DCN graph of torcheasyrec-hugectr.md B.3.1.
const char* kDcn = R"({"layers": [
 {"type": "Data", "label": {"top": "label", "label_dim": 1}, "dense": {"top": "dense", "dense_dim": 13},
  "sparse": [{"top": "data1", "nnz_per_slot": [1], "is_fixed_length": true, "slot_num": 26}]},
 {"type": "DistributedSlotSparseEmbeddingHash", "bottom": "data1", "top": "sparse_embedding1",
  "sparse_embedding_hparam": {"workspace_size_per_gpu_in_mb": 300, "max_vocabulary_size_global": 1638400,
                              "embedding_vec_size": 16, "combiner": "sum"}},
 {"type": "Reshape", "bottom": "sparse_embedding1", "top": "reshape1", "leading_dim": 416, "time_step": 0},
 {"type": "Concat", "bottom": ["reshape1", "dense"], "top": "concat1", "axis": 1},
 {"type": "Slice", "bottom": "concat1", "top": ["slice11", "slice12"], "ranges": [[0,429],[0,429]]},
 {"type": "MultiCross", "bottom": "slice11", "top": "multicross1", "mc_param": {"num_layers": 6}},
 {"type": "InnerProduct", "bottom": "slice12", "top": "fc1", "fc_param": {"num_output": 1024}},
 {"type": "ReLU", "bottom": "fc1", "top": "relu1"},
 {"type": "Dropout", "bottom": "relu1", "top": "dropout1", "rate": 0.5},
 {"type": "InnerProduct", "bottom": "dropout1", "top": "fc2", "fc_param": {"num_output": 1024}},
 {"type": "ReLU", "bottom": "fc2", "top": "relu2"},
 {"type": "Dropout", "bottom": "relu2", "top": "dropout2", "rate": 0.5},
 {"type": "Concat", "bottom": ["dropout2", "multicross1"], "top": "concat2", "axis": 1},
 {"type": "InnerProduct", "bottom": "concat2", "top": "fc3", "fc_param": {"num_output": 1}},
 {"type": "BinaryCrossEntropyLoss", "bottom": ["fc3", "label"], "top": "loss"}
]})";

std::string with_layer_replaced(std::string graph, const std::string& from, const std::string& to) {
  const size_t at = graph.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return graph.replace(at, from.size(), to);
}

TEST(HugectrGraphTest, LayersCarryTheirTypeAndCheckedParameters) {
  std::string graph = with_layer_replaced(kDcn, R"({"type": "Dropout", "bottom": "relu2", "top": "dropout2", "rate": 0.5})",
                                          R"({"type": "BatchNorm", "bottom": "relu2", "top": "dropout2",
                                              "bn_param": {"factor": 1.0, "eps": 0.001}})");
  auto parsed = parse_hugectr_graph(graph, "dcn.json");
  ASSERT_TRUE(parsed) << parsed.error().describe();
  const auto& layers = parsed.value().layers;
  ASSERT_EQ(layers.size(), 12u);  // the loss became an output
  EXPECT_EQ(layers[0].type, HugectrLayerType::kReshape);
  EXPECT_EQ(layers[1].type, HugectrLayerType::kConcat);
  EXPECT_EQ(layers[1].axis, 1u);
  EXPECT_EQ(layers[2].type, HugectrLayerType::kSlice);
  EXPECT_EQ(layers[2].ranges, (std::vector<std::pair<uint64_t, uint64_t>>{{0, 429}, {0, 429}}));
  EXPECT_EQ(layers[9].type, HugectrLayerType::kBatchNorm);
  EXPECT_EQ(layers[9].type_name, "BatchNorm");
  EXPECT_DOUBLE_EQ(layers[9].eps, 0.001);
  auto bad_eps = parse_hugectr_graph(with_layer_replaced(graph, "\"eps\": 0.001", "\"eps\": \"small\""), "dcn.json");
  ASSERT_FALSE(bad_eps);
  EXPECT_NE(bad_eps.error().message.find("layer 11 (BatchNorm): bn_param.eps"), std::string::npos)
      << bad_eps.error().message;
}

TEST(HugectrGraphTest, DcnShapesAndWeightLayout) {
  auto graph = parse_hugectr_graph(kDcn, "dcn.json");
  ASSERT_TRUE(graph) << graph.error().describe();
  const HugectrGraph& g = graph.value();
  EXPECT_EQ(g.dense_dim, 13u);
  ASSERT_EQ(g.embeddings.size(), 1u);
  EXPECT_EQ(g.embeddings[0].top, "sparse_embedding1");
  EXPECT_EQ(g.embeddings[0].slot_num, 26u);
  EXPECT_EQ(g.embeddings[0].vec_size, 16u);
  EXPECT_EQ(g.tensors.at("concat1").dims, (HugectrShape{429}));
  EXPECT_EQ(g.tensors.at("concat2").dims, (HugectrShape{1024 + 429}));
  EXPECT_EQ(g.tensors.at("fc3").dims, (HugectrShape{1}));
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].input, "fc3");
  EXPECT_EQ(g.outputs[0].head, "sigmoid");
  // MultiCross: 6 x (w, b) of 429; fc1 429x1024 + 1024; fc2 1024x1024 + 1024; fc3 1453x1 + 1
  const uint64_t floats = 6 * 2 * 429 + (429 * 1024 + 1024) + (1024 * 1024 + 1024) + (1453 + 1);
  EXPECT_EQ(g.weight_floats, floats);
  ASSERT_EQ(g.weights.size(), 12u + 6u);
  EXPECT_EQ(g.weights[0].name, "multicross1.w0");
  EXPECT_EQ(g.weights[12].name, "fc1.weight");
  EXPECT_EQ(g.weights[12].shape, (HugectrShape{429, 1024}));
  EXPECT_EQ(g.weights[12].offset, 6u * 2 * 429);
  EXPECT_EQ(g.weights.back().name, "fc3.bias");
  EXPECT_EQ(g.weights.back().offset + g.weights.back().count, floats);

  EXPECT_TRUE(check_dense_file_size(g, floats * 4, "dense.model"));
  auto short_file = check_dense_file_size(g, floats * 4 - 4, "dense.model");
  ASSERT_FALSE(short_file);
  EXPECT_EQ(short_file.error().code, ExitCode::kBadInput);
  EXPECT_NE(short_file.error().message.find("4 bytes short"), std::string::npos) << short_file.error().message;
  auto long_file = check_dense_file_size(g, floats * 4 + 4, "dense.model");
  ASSERT_FALSE(long_file);
  EXPECT_NE(long_file.error().message.find("4 bytes too many"), std::string::npos);
}

TEST(HugectrGraphTest, DlrmInteractionAndBatchNorm) {
  const char* dlrm = R"({"layers": [
   {"type": "Data", "dense": {"top": "dense", "dense_dim": 13}, "sparse": [{"top": "data1", "slot_num": 26}]},
   {"type": "LocalizedSlotSparseEmbeddingHash", "bottom": "data1", "top": "emb",
    "sparse_embedding_hparam": {"embedding_vec_size": 8, "combiner": "mean"}},
   {"type": "InnerProduct", "bottom": "dense", "top": "fc1", "fc_param": {"num_output": 8}},
   {"type": "BatchNorm", "bottom": "fc1", "top": "bn1", "bn_param": {"factor": 1.0, "eps": 1e-5}},
   {"type": "Interaction", "bottom": ["bn1", "emb"], "top": "inter"},
   {"type": "InnerProduct", "bottom": "inter", "top": "fc2", "fc_param": {"num_output": 2}},
   {"type": "CrossEntropyLoss", "bottom": ["fc2", "label"], "top": "loss"}
  ]})";
  auto graph = parse_hugectr_graph(dlrm, "dlrm.json");
  ASSERT_TRUE(graph) << graph.error().describe();
  EXPECT_TRUE(graph.value().embeddings[0].localized);
  EXPECT_EQ(graph.value().embeddings[0].combiner, "mean");
  // 27 vectors of 8: 8 dense + 27*26/2 dot products + 1 zero of padding
  EXPECT_EQ(graph.value().tensors.at("inter").dims, (HugectrShape{8 + 351 + 1}));
  EXPECT_EQ(graph.value().batch_norms, 1u);
  EXPECT_EQ(graph.value().outputs[0].head, "softmax");
}

TEST(HugectrGraphTest, BadGraphsAreErrorsNamingTheLayer) {
  struct Case {
    std::string graph;
    std::string says;
  } cases[] = {
      {with_layer_replaced(kDcn, R"({"type": "ReLU", "bottom": "fc1", "top": "relu1"})",
                           R"({"type": "GRU", "bottom": "fc1", "top": "relu1"})"),
       "layer 7 (GRU): layer type \"GRU\" is not supported (supported: Reshape, Concat"},
      {with_layer_replaced(kDcn, R"("bottom": "fc1", "top": "relu1")", R"("bottom": "fc9", "top": "relu1")"),
       "bottom \"fc9\" is not produced by any earlier layer"},
      {with_layer_replaced(kDcn, R"("ranges": [[0,429],[0,429]])", R"("ranges": [[0,429],[0,430]])"),
       "is not inside the last dimension of [batch, 429]"},
      {with_layer_replaced(kDcn, R"("leading_dim": 416)", R"("leading_dim": 15)"), "would not keep whole samples"},
      {with_layer_replaced(kDcn, R"("leading_dim": 416)", R"("leading_dim": 16)"),
       "bottoms [batch x 26, 16] and [batch, 13] have different leading dimensions"},
      {with_layer_replaced(kDcn, R"("mc_param": {"num_layers": 6})", R"("mc_param": {"num_layers": 6, "projection_dim": 4})"),
       "MultiCross v2"},
      {with_layer_replaced(kDcn, R"("fc_param": {"num_output": 1})", R"("fc_param": {"num_output": 0})"),
       "needs a positive integer \"num_output\""},
      {with_layer_replaced(kDcn, R"({"type": "BinaryCrossEntropyLoss", "bottom": ["fc3", "label"], "top": "loss"})",
                           R"({"type": "Sigmoid", "bottom": "fc3", "top": "out"})"),
       "no loss layer"},
      {with_layer_replaced(kDcn, R"("embedding_vec_size": 16)", R"("embedding_vec_size": 15)"),
       "reshaping [batch, 26, 15] (390 values per sample) to leading_dim 416"},
      {with_layer_replaced(kDcn, R"("bottom": ["dropout2", "multicross1"])", R"("bottom": ["dropout2", "sparse_embedding1"])"),
       "cannot be concatenated"},
      {"{\"layers\": []}", "no \"layers\""},
      {"[1]", "no \"layers\""},
  };
  for (const auto& c : cases) {
    auto graph = parse_hugectr_graph(c.graph, "g.json");
    ASSERT_FALSE(graph) << c.says;
    EXPECT_EQ(graph.error().code, ExitCode::kBadInput);
    EXPECT_EQ(graph.error().file, "g.json");
    EXPECT_NE(graph.error().message.find(c.says), std::string::npos) << graph.error().message;
  }
}

TEST(HugectrGraphTest, LegacyKeyType) {
  std::string legacy = kDcn;
  legacy.insert(1, R"("solver": {"input_key_type": "I32"}, )");
  auto graph = parse_hugectr_graph(legacy, "g.json");
  ASSERT_TRUE(graph) << graph.error().describe();
  EXPECT_EQ(graph.value().legacy_key_bytes, 4u);
}

}  // namespace
}  // namespace recis_convert

namespace recis_convert {
namespace {

// docs/hugectr.md's table of supported layers is the code's table: a layer added to one is added to the other (this test
// prints the block to paste).
TEST(HugectrGraphTest, ReadmesLayerTableIsTheCodes) {
  std::ifstream in(std::string(RECIS_SOURCE_DIR) + "/docs/hugectr.md");
  ASSERT_TRUE(in) << "docs/hugectr.md not found";
  const std::string readme((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- hugectr-layers:", end = "<!-- end hugectr-layers -->";
  const size_t from = readme.find(begin), to = readme.find(end);
  ASSERT_NE(from, std::string::npos);
  ASSERT_NE(to, std::string::npos);
  const size_t body = readme.find('\n', from) + 1;
  const std::string expected = hugectr_layers_markdown();
  EXPECT_EQ(readme.substr(body, to - body), expected) << "docs/hugectr.md's block should be:\n" << expected;
  for (const auto& layer : supported_hugectr_layers()) {
    EXPECT_NE(expected.find("| " + layer + " |"), std::string::npos) << layer;
  }
}

}  // namespace
}  // namespace recis_convert
