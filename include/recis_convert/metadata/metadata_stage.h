// The metadata stage, on rank 0 after every rank streamed its share: the exported files checked together, then
// the files that describe them (recis-checkpoint.md 6-8, 20), the shipped configs and assets, and at the end the
// manifest and the run record.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "recis_convert/cli/cli.h"
#include "recis_convert/common/error.h"
#include "recis_convert/common/log.h"
#include "recis_convert/metadata/key_order.h"
#include "recis_convert/metadata/manifest.h"
#include "recis_convert/metadata/metadata.h"
#include "recis_convert/metadata/run_report.h"
#include "recis_convert/sinks/file_export.h"
#include "recis_convert/sources/source.h"

namespace recis_convert {

// Every file of the export, checked together. Moved, never copied: `kept` points into `files`.
struct ExportSummary {
  ExportSummary() = default;
  ExportSummary(ExportSummary&&) = default;
  ExportSummary& operator=(ExportSummary&&) = default;
  ExportSummary(const ExportSummary&) = delete;
  ExportSummary& operator=(const ExportSummary&) = delete;

  std::vector<FileResult> files;    // sorted by name
  std::vector<KeptTensor> kept;     // their kept tensors in key order, pointing into `files`' elements and
                                    // (KeptTensor::logical) into the source's catalog, which must outlive this
  std::vector<TableSummary> tables;
  uint64_t bytes_in = 0;            // source bytes of all data files
  uint64_t bytes_out = 0;           // bytes written into data files (model.h5's size once described)
  uint64_t bytes_dropped = 0;       // bytes of the tensors the row transforms dropped
  QuantizationLedger quantization;  // the tables converted to a serving dtype, with their error (all ranks)
  std::map<std::string, TableEvictionRecord> evictions;  // the tables an eviction rule applied to
  ExportClock clock;                    // the export's step, and each step_filter table's
  std::optional<int64_t> delta_base;    // --delta-since: a delta of the rows updated after this step
  std::map<std::string, FileDigest> shared;  // the files every rank wrote into (model.h5), checksummed by all
};

// Every block of the index was found in its file, and the tables' parts agree (summarize_tables). Warns when
// --filter-optimizer found nothing to drop. `quantization`: what every rank converted, merged.
Result<ExportSummary> summarize_export(const JobOptions& options, const SourceDescription& source,
                                       std::vector<FileResult> files, QuantizationLedger quantization,
                                       const Log& log);

// --dry-run: what each file would become, and the totals; `export_dir`: where a real run would publish.
void log_dry_run(const JobOptions& options, const std::string& export_dir, const ExportSummary& summary,
                 const std::map<std::string, int>& owner, const Log& log);

// The metadata files in `dir`: index, tensorkey.json and the torch_rank json for safetensors (model.h5 described
// for hdf5), fg.json, input_columns.json, the --asset-files. Returns the manifest's input so far.
Result<ManifestInput> write_export_metadata(const JobOptions& options, const SourceDescription& source,
                                            ExportSummary& summary, const std::string& dir);

// manifest.json, then run_record.json (the only file allowed to differ between runs of the same job).
Status write_manifest_and_record(const JobOptions& options, const ManifestInput& manifest, const std::string& dir,
                                 const RunReport& report);

}  // namespace recis_convert
