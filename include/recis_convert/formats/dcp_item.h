// Where a Distributed Checkpoint chunk's elements lie in its data file. Each chunk is stored as an item: a complete
// torch.save archive of the chunk, written straight into the data file at the item's offset (formats/dcp_metadata.h
// describes the items). Only its data record is needed: found from the item's central directory, the item's
// data.pkl checked to hold one tensor of the chunk's dtype and sizes, contiguous and row-major, whose storage record
// has the bytes its elements need. The elements are then read with range reads, never the item whole.
#pragma once

#include <cstdint>
#include <string>

#include "recis_convert/common/error.h"
#include "recis_convert/formats/dcp_metadata.h"

namespace recis_convert {

// The chunk's elements: `bytes` bytes at `offset` of its data file, row-major.
struct DcpChunkData {
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

// `fd` is the chunk's data file (`path` in errors), `file_size` bytes long. kBadInput naming the file and tensor: an
// item outside the file (a cut file), not a plain torch.save archive (compressed, another transform, another
// object), or holding another tensor than the chunk.
Result<DcpChunkData> locate_dcp_chunk(int fd, uint64_t file_size, const std::string& path, const DcpTensor& tensor,
                                      const DcpChunk& chunk);

}  // namespace recis_convert
