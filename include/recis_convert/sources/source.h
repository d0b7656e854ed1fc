// The job's input as every rank agrees on it after discovery: a RecIS checkpoint (checkpoint.h) or a HugeCTR model
// (hugectr_export.h). Discovery runs on rank 0; the description is then broadcast (mpi/job_messages.h), and each
// rank completes it with complete_source() before use.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/hugectr_export.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

struct SourceDescription {
  // The data files and blocks. For a HugeCTR model, the files its tables become (hugectr_listing()), so that the
  // metadata stage describes both sources alike.
  CheckpointListing listing;
  std::string selection;                     // why this input: "latest", the --select best reason, the graph
  std::optional<HugectrModel> hugectr;  // --source hugectr: the tables and their output files

  bool is_hugectr() const { return hugectr.has_value(); }
  std::string kind() const { return is_hugectr() ? "HugeCTR model" : "checkpoint"; }
};

// Rank 0: resolves and checks the input (--select best, the checkpoint's index and tensorkey.json, or the
// HugeCTR graph and tables), and that every table an option names exists. Errors are kBadInput / kUsage naming the
// file.
Result<SourceDescription> discover_source(const JobOptions& options, const RowTransformChain& transforms,
                                          const Log& log);

// The source's table names, sorted: a RecIS checkpoint's hashtable children (tensorkey.json), HugeCTR's tables.
// Needs every block (rank 0 after discovery).
std::vector<std::string> source_table_names(const SourceDescription& source);

// Every table an option names (--quantize-table) must be one the source has: a typo would otherwise export the
// table unconverted without a word. kUsage naming the table and the `kind` of source ("checkpoint", "export").
Status check_named_tables(const EmbeddingDTypes& dtypes, const SourceDescription& source, const std::string& kind);

// Every rank, after the broadcast: what does not travel (the HugeCTR tables' layouts through `transforms`).
Status complete_source(SourceDescription& source, const RowTransformChain& transforms);

}  // namespace recis_convert
