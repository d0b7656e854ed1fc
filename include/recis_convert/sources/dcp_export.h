// --source dcp: a Distributed Checkpoint's embedding tables (dcp_checkpoint.h names them) as row tables
// (row_tables.h), exported in the layout of a RecIS checkpoint: slot `id` is the int64 row index, slot `embedding`
// the table's rows in its own dtype (F32, F16 or BF16) unless a serving dtype is asked for.
//
// Where this differs from TorchEasyRec's own export: a managed-collision (ZCH) table's `id` is its row index, the
// remapped id torchrec looks the row up by, not the raw feature id; the raw ids stay in the table's `_mch_*`
// buffers (inspect lists them). Joining them to the rows is left to serving, as torchrec's own inference does.
#pragma once

#include <string>

#include "recis_convert/common/error.h"
#include "recis_convert/sources/dcp_checkpoint.h"
#include "recis_convert/sources/row_tables.h"
#include "recis_convert/transforms/row_transform.h"

namespace recis_convert {

// The checkpoint's tables in name order, table i of n into row_table_file_name(i, n), laid out through
// `transforms`. kBadInput naming the tensor: a table name RecIS's keys cannot hold (/ @ ^ .), or no table at all.
Result<RowTables> dcp_row_tables(const DcpCheckpoint& checkpoint, const RowTransformChain& transforms);

}  // namespace recis_convert
