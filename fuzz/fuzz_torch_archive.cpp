// libFuzzer target: a torch.save archive (zip + pickle) through the weights-only reader, via a memfd; the same
// bytes also as a TorchScript archive (module objects allowed, deflated code records indexed).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "recis_convert/formats/torch_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace recis_convert;
  int fd = ::memfd_create("fuzz.pt", 0);
  if (fd < 0) return 0;
  if (::write(fd, data, size) != static_cast<ssize_t>(size)) {
    ::close(fd);
    return 0;
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  for (auto state : {read_torch_state_dict(path), read_torchscript_tensors(path)}) {
    if (!state) continue;
    for (const auto& tensor : state.value().tensors) {
      if (tensor.numel() <= (1u << 20)) (void)read_tensor_data(state.value(), tensor);  // bounded work per input
    }
  }
  ::close(fd);
  return 0;
}
