// `recis-convert verify OUT`: whether a published export is what its manifest.json says, before a serving system
// loads it. Every file's size and checksum (the files' pieces shared among the ranks), no file missing or extra,
// index / tensorkey.json / the torch_rank json regenerated from the data files' headers byte for byte, and the
// frozen dense model re-scoring sample_io.safetensors within 1e-6 (through the libtorch plugin, on rank 0).
// Every problem is reported, not just the first; exit 0 only if there is none (else 3).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/mpi/comm.h"

namespace recis_convert {

struct ManifestFile {
  std::string name;  // relative to the export directory
  uint64_t bytes = 0;
  uint64_t checksum = 0;
  uint64_t piece_bytes = 0;  // the checksum's pieces: the manifest's checksum_piece_bytes for "xxh3_64_pieces"
};

// The data and metadata files manifest.json lists (kBadInput if it is missing or not a recis-convert manifest).
Result<std::vector<ManifestFile>> read_manifest_files(const std::string& export_dir);

// Each returns its problems as "file: what is wrong" lines; empty means fine. check_manifest_file checks one file's
// size and checksum on one rank (run_verify shares the pieces of every file among the ranks).
std::vector<std::string> check_manifest_file(const std::string& export_dir, const ManifestFile& file);
std::vector<std::string> check_unlisted_files(const std::string& export_dir, const std::vector<ManifestFile>& files);
std::vector<std::string> check_metadata_files(const std::string& export_dir);  // no-op for an HDF5 export

// Every rank (a collective): the files each export of `dirs` lists in its manifest, with their sizes and checksums,
// the pieces shared among the ranks. Every rank gets the manifests' files (in `dirs` order); rank 0 also gets the
// problems, "file: what is wrong" lines (none elsewhere). An unreadable manifest is an error on every rank; a
// signal is kInterrupted. verify checks an export with it, merge each of its inputs before it writes. The files at
// `hashed_elsewhere` (dir + "/" + name) are checked for their size only: a merge hashes its base's whole files from
// the reads of its stream (sources/input_verifier.h).
struct ManifestCheck {
  std::vector<std::vector<ManifestFile>> files;
  std::vector<std::string> problems;
};
Result<ManifestCheck> check_manifest_checksums(Comm& world, const std::vector<std::string>& dirs,
                                               const std::set<std::string>& hashed_elsewhere = {});

ExitCode run_verify(const VerifyOptions& options, Comm& world);

}  // namespace recis_convert
