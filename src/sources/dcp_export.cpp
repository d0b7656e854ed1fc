#include "recis_convert/sources/dcp_export.h"

#include "recis_convert/common/file_io.h"
#include "recis_convert/formats/dcp_metadata.h"

namespace recis_convert {

Result<RowTables> dcp_row_tables(const DcpCheckpoint& checkpoint, const RowTransformChain& transforms) {
  const DcpLocation& where = checkpoint.location;
  if (checkpoint.tables.empty()) {
    return bad_input(where.dcp_dir + "/" + kDcpMetadataFile,
                     "names no embedding table (no 2-D tensor named ...embedding_bags.<t>.weight or "
                     "...embeddings.<t>.weight)");
  }
  RowTables model;
  model.source_path = where.dcp_dir;
  model.ckpt_id = split_path(where.checkpoint_dir).base;
  for (size_t i = 0; i < checkpoint.tables.size(); ++i) {
    const DcpTable& table = checkpoint.tables[i];
    if (table.name.find_first_of("/@^.") != std::string::npos) {
      return bad_input(where.dcp_dir + "/" + kDcpMetadataFile,
                       "tensor \"" + table.weight.fqn + "\": table name \"" + table.name +
                           "\" holds one of / @ ^ . (RecIS's tensor keys cannot)");
    }
    RowTable t;
    t.name = table.name;
    t.source.of = DcpTableSource{where.dcp_dir, table.weight};
    t.file = row_table_file_name(i, checkpoint.tables.size());
    model.tables.push_back(std::move(t));
  }
  auto laid_out = lay_out_row_tables(model, transforms);
  if (!laid_out) return laid_out.error();
  return model;
}

}  // namespace recis_convert
