// libFuzzer target: a Distributed Checkpoint's .metadata through the allow-list reader and its tiling checks; the
// same bytes, via a memfd, as a DCP item (a torch.save archive found at an offset of its file) whose chunk is
// located as the DCP source locates one.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "recis_convert/formats/dcp_item.h"
#include "recis_convert/formats/dcp_metadata.h"
#include "recis_convert/formats/torch_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recis_convert;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)parse_dcp_metadata(bytes, "fuzz/.metadata");
  int fd = ::memfd_create("fuzz.distcp", 0);
  if (fd < 0) return 0;
  if (::write(fd, data, size) != static_cast<ssize_t>(size)) {
    ::close(fd);
    return 0;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  // the item as the whole file, and as the file from its 7th byte on (items start anywhere)
  for (uint64_t base : {uint64_t{0}, uint64_t{7}}) {
    if (base > size) continue;
    auto item = read_torch_tensor_item(fd, base, size - base, path);
    if (!item) continue;
    const TorchTensor& t = item.value().tensors.front();
    DcpTensor tensor{"t", t.dtype, t.shape, {}};
    DcpChunk chunk{std::vector<uint64_t>(t.shape.size(), 0), t.shape, "fuzz.distcp", base, size - base};
    (void)locate_dcp_chunk(fd, size, path, tensor, chunk);
  }
  ::close(fd);
  return 0;
}
