// Block catalogs made or changed by hand in unit tests.
#pragma once

#include <string>
#include <tuple>
#include <vector>

#include "recis_convert/sources/block_catalog.h"

namespace recis_convert::testing {

// (key, file number or kNotIndexed, tensorkey.json name or "")
using BlockRow = std::tuple<std::string, uint32_t, std::string>;

inline BlockCatalog catalog_of(const std::vector<BlockRow>& rows) {
  BlockCatalog::Builder builder;
  for (const auto& [key, file, logical] : rows) builder.add(key, file, logical);
  return std::move(builder).finish();
}

// `catalog` with the block `key` set to `file` and `logical` (added if absent; dropped when both say "absent").
inline BlockCatalog with_block(const BlockCatalog& catalog, const std::string& key, uint32_t file,
                               const std::string& logical) {
  std::vector<BlockRow> rows;
  for (size_t i = 0; i < catalog.size(); ++i) {
    const auto b = catalog[i];
    if (b.key != key) rows.emplace_back(std::string(b.key), b.file, std::string(b.logical));
  }
  if (file != BlockCatalog::kNotIndexed || !logical.empty()) rows.emplace_back(key, file, logical);
  return catalog_of(rows);
}

}  // namespace recis_convert::testing
