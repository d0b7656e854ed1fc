// RecIS checkpoint discovery and naming rules (recis-checkpoint.md sections 1, 3, 4.6, 6, 7, 9).
//
// discover_checkpoint() runs on rank 0 only (one readdir per job); its CheckpointListing is broadcast (mpi/job_messages.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "recis_convert/common/error.h"
#include "recis_convert/common/file_io.h"
#include "recis_convert/sources/block_catalog.h"

namespace recis_convert {

inline constexpr const char* kIndexFile = "index";
inline constexpr const char* kTensorKeyFile = "tensorkey.json";
inline constexpr const char* kTorchRankFile = "torch_rank_weights_embs_table_multi_shard.json";
inline constexpr const char* kCheckpointListFile = "checkpoint";

struct DataFile {
  std::string name;  // plain file name inside the checkpoint directory
  uint64_t size = 0;
  // When discovered: every reader compares the file with these when it opens it and after it has read it, so a file
  // rewritten in place (same size) fails the run instead of giving an export that is neither version and verifies.
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;

  FileStamp stamp() const { return FileStamp{size, mtime_ns, ctime_ns}; }
};

// After reading a data file through `fd`: kBadInput "file changed as we read it" naming `path` when the file is no
// longer as `file` was discovered (size, modification or change time).
Status check_read_unchanged(int fd, const std::string& path, const DataFile& file);

// A sparse block's logical name from tensorkey.json: "<child>@<slot>^<begin>@<end>@<size>".
struct SparseKey {
  std::string child;
  std::string slot;
  std::string slice;  // "<begin>@<end>@<size>", zero-padded as RecIS writes it
};

struct CheckpointListing {
  std::string source;                 // the --ckpt-dir argument as given
  std::string ckpt_dir;               // the resolved ckpt_<step> directory
  std::string ckpt_id;                // its base name, e.g. "ckpt_200"
  std::vector<DataFile> files;        // the data files named by index, sorted by name
  // Every block of index and tensorkey.json; BlockCatalog::Block::file indexes `files`. After discovery, a rank
  // other than 0 holds only the blocks of its own files (the plan stage: export_job.cpp, commands/merge.cpp).
  BlockCatalog blocks;
  bool blocks_of_all_files = true;  // false on a rank that holds only its share (it cannot tell "not indexed"
                                    // from "indexed in a file of another rank")

  // The number of the data file `name` in `files`, or BlockCatalog::kNotIndexed.
  uint32_t file_number(std::string_view name) const;
};

// Every data file of `listing` still as discovered (by path: one stat each), for a reader that cannot check each
// file as it finishes it (merge reads a delta's files from every rank, piece by piece).
Status check_listing_unchanged(const CheckpointListing& listing);

// Resolves `ckpt_arg` (a ckpt_<step> directory, or its output directory with a `checkpoint` file naming the
// latest) and checks the checkpoint is complete: index and tensorkey.json present and valid, no leftover *.tmp,
// every file named by index present, every *.safetensors file named by index. Errors are kBadInput.
Result<CheckpointListing> discover_checkpoint(const std::string& ckpt_arg);

// The checkpoint id named by the text of an output directory's `checkpoint` file: its last line that is not
// empty after trimming whitespace. `file` is for error messages.
Result<std::string> latest_checkpoint_id(const std::string& text, const std::string& file);

// The checked contents of `index` and `tensorkey.json`, parsed from their text (`path` for error messages).
struct IndexContents {
  std::map<std::string, std::string> block_file;  // block key -> file name
  std::vector<std::string> files;                 // every file of file_index, sorted
};
Result<IndexContents> parse_index_json(const std::string& text, const std::string& path);
Result<std::map<std::string, std::string>> parse_tensorkey_json(const std::string& text, const std::string& path);

// index and tensorkey.json together, checked as parse_index_json and parse_tensorkey_json check them: the data
// files the index names (sorted) and the catalog of every block. The texts should have fast_json::kPadding spare
// capacity (read_small_file leaves it) to be parsed in place.
struct CheckpointBlocks {
  std::vector<std::string> files;
  BlockCatalog blocks;
  bool blocks_of_all_files = true;  // false on a rank that holds only its share (it cannot tell "not indexed"
                                    // from "indexed in a file of another rank")
};
Result<CheckpointBlocks> parse_checkpoint_blocks(const std::string& index_text, const std::string& index_path,
                                                 const std::string& tensorkey_text, const std::string& tensorkey_path);

// What tensorkey.json says of the blocks, checked against the index, so that a lying file is refused rather than
// copied into an export that verifies: every entry names a block that `index` places in a data file, its key is
// the part key of the table and slot it names ("<child>.<slot>/part_<r>_<R>"), its slice is "<b>@<e>@65536" with
// b < e, and the slices of each table's slot cover [0, 65536) exactly once. kBadInput naming `tensorkey_path`,
// the entry and what is wrong.
Status check_tensorkey_slices(const BlockCatalog& blocks, const std::string& tensorkey_path);

// Parses a tensorkey.json value. nullopt if it is not "<child>@<slot>^<b>@<e>@<size>".
std::optional<SparseKey> parse_sparse_key(std::string_view logical);
// The same, as views into `logical`: no copies where a million keys are read.
struct SparseKeyView {
  std::string_view child, slot, slice;
};
std::optional<SparseKeyView> parse_sparse_key_view(std::string_view logical);

// How a header key is exported. Sparse keys are the ones in tensorkey.json (`logical`, their tensorkey.json
// name, or empty when the key is not there); dense keys end in "^ " (RecIS's BlockNameEncode with slice " "),
// e.g. the optimizer scalar "sparse_adamw_step^ ".
struct KeyClass {
  bool sparse = false;
  SparseKey sparse_key;     // when sparse
  std::string dense_name;   // when dense: the key without its "^ " suffix
};
std::optional<KeyClass> classify_key(std::string_view key, std::string_view logical);
// The same, looking the key up in a catalog.
std::optional<KeyClass> classify_key(std::string_view key, const BlockCatalog& blocks);

}  // namespace recis_convert
