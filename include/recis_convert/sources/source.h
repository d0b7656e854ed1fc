// The job's input as every rank agrees on it after discovery: a RecIS checkpoint (checkpoint.h), a HugeCTR model
// (hugectr_export.h) or a Distributed Checkpoint (dcp_export.h), the last two as row tables (row_tables.h).
// Discovery runs on rank 0; the description is then broadcast (mpi/job_messages.h), and each
// rank completes it with complete_source() before use.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/sources/checkpoint.h"
#include "recis_convert/sources/global_step.h"
#include "recis_convert/sources/row_tables.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

struct SourceDescription {
  SourceKind kind = SourceKind::kRecis;
  // The data files and blocks. For row tables, the files they become (row_tables_listing()), so that the metadata
  // stage describes every source alike.
  CheckpointListing listing;
  std::string selection;               // why this input: "latest", the --select best reason, the graph
  std::optional<RowTables> row_tables;  // --source hugectr, dcp: the tables and their output files
  std::optional<GlobalStep> step;      // --source dcp: the global step TorchEasyRec names the checkpoint by
  std::vector<DcpTensor> dense;        // --source dcp: every tensor that is not a table (dense/dense_weights.h)

  bool is_hugectr() const { return kind == SourceKind::kHugectr; }
  bool has_row_tables() const { return row_tables.has_value(); }
  // What the input is, for messages: "checkpoint", "HugeCTR model", "Distributed Checkpoint".
  std::string what() const;
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

// Every rank, after the broadcast: what does not travel (the row tables' layouts through `transforms`).
Status complete_source(SourceDescription& source, const RowTransformChain& transforms);

}  // namespace recis_convert
