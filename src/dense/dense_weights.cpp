#include "recis_convert/dense/dense_weights.h"

#include <sys/stat.h>

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/dcp_metadata.h"
#include "recis_convert/formats/torch_archive.h"
#include "recis_convert/sources/dcp_columns.h"

namespace recis_convert {
namespace {

class ModelPtWeights final : public DenseWeights {
 public:
  explicit ModelPtWeights(TorchStateDict state) : state_(std::move(state)) {
    for (const TorchTensor& t : state_.tensors) weights_.push_back(DenseWeight{t.name, t.dtype, t.shape});
  }
  const std::string& path() const override { return state_.path; }
  std::string what() const override { return "model.pt"; }
  const std::vector<DenseWeight>& weights() const override { return weights_; }
  Result<std::string> bytes(size_t i) const override { return read_tensor_data(state_, state_.tensors[i]); }

 private:
  TorchStateDict state_;
  std::vector<DenseWeight> weights_;
};

class DcpDenseWeights final : public DenseWeights {
 public:
  DcpDenseWeights(std::string dir, std::vector<DcpTensor> tensors)
      : dir_(std::move(dir)), metadata_(dir_ + "/" + kDcpMetadataFile), tensors_(std::move(tensors)) {
    for (const DcpTensor& t : tensors_) weights_.push_back(DenseWeight{t.fqn, t.dtype, t.shape});
  }
  const std::string& path() const override { return metadata_; }
  std::string what() const override { return "the checkpoint"; }
  const std::vector<DenseWeight>& weights() const override { return weights_; }
  Result<std::string> bytes(size_t i) const override {
    return read_dcp_tensor(dir_, tensors_[i], kMaxTorchStorageBytes);  // as much as a model.pt storage may hold
  }

 private:
  std::string dir_, metadata_;
  std::vector<DcpTensor> tensors_;
  std::vector<DenseWeight> weights_;
};

}  // namespace

Result<std::unique_ptr<DenseWeights>> open_model_pt(const std::string& path) {
  auto state = read_torch_state_dict(path);
  if (!state) return state.error();
  return std::unique_ptr<DenseWeights>(std::make_unique<ModelPtWeights>(std::move(state).value()));
}

Result<std::unique_ptr<DenseWeights>> open_dense_weights(const SourceDescription& source) {
  if (source.kind == SourceKind::kDcp) {
    return std::unique_ptr<DenseWeights>(
        std::make_unique<DcpDenseWeights>(source.row_tables->source_path, source.dense));
  }
  const std::string path = source.listing.ckpt_dir + "/model.pt";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::unique_ptr<DenseWeights>();  // anything else there is read, and refused
  return open_model_pt(path);
}

}  // namespace recis_convert
