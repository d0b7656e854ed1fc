#include "recis_convert/formats/dcp_item.h"

#include "recis_convert/formats/torch_archive.h"

namespace recis_convert {
namespace {

// Row-major with no gaps: each dimension's stride is the product of the later sizes (torch's is_contiguous: a
// dimension of size 1 may have any stride, and an empty tensor is contiguous whatever its strides).
bool row_major(const TorchTensor& t) {
  if (t.numel() == 0) return true;
  uint64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

}  // namespace

Result<DcpChunkData> locate_dcp_chunk(int fd, uint64_t file_size, const std::string& path, const DcpTensor& tensor,
                                      const DcpChunk& chunk) {
  const std::string what = "tensor \"" + tensor.fqn + "\", chunk at " + shape_text(chunk.offsets);
  if (chunk.item_offset > file_size || chunk.item_length > file_size - chunk.item_offset) {
    return bad_input(path, what + ": its item (" + std::to_string(chunk.item_length) + " bytes at " +
                               std::to_string(chunk.item_offset) + ") runs past the end of the file (" +
                               std::to_string(file_size) + " bytes; cut short?)");
  }
  auto item = read_torch_tensor_item(fd, chunk.item_offset, chunk.item_length, path);
  if (!item) return bad_input(path, what + ": not a plain torch.save item: " + item.error().message);
  const TorchTensor& t = item.value().tensors.front();
  if (t.dtype != tensor.dtype || t.shape != chunk.sizes) {
    return bad_input(path, what + ": its item holds a " + dtype_torch_name(t.dtype) + " tensor of size " +
                               shape_text(t.shape) + ", the metadata says " + dtype_torch_name(tensor.dtype) + " " +
                               shape_text(chunk.sizes));
  }
  if (!row_major(t)) return bad_input(path, what + ": its item is a strided view (not row-major); not read");
  const TorchStorage& storage = item.value().storages.at(t.storage_key);
  const uint64_t element = dtype_bits(t.dtype) / 8;
  return DcpChunkData{storage.entry.data_offset + t.storage_offset * element, t.numel() * element};
}

}  // namespace recis_convert
