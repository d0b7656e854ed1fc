// Google Benchmark micro-benchmarks of the hot pieces: header parsing and validation, filter planning, the copy
// engine (buffered vs copy_file_range, buffer sizes), checksum throughput, and embedding rows into each serving
// dtype (with the error measurement the export does on the way), and the row decisions of eviction and deltas.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "recis_convert/common/checksum.h"
#include "recis_convert/sinks/copy_engine.h"
#include "recis_convert/sinks/file_layout.h"
#include "recis_convert/transforms/kept_row_bitmap.h"
#include "recis_convert/formats/safetensors.h"
#include "recis_convert/publish/staging.h"
#include "recis_convert/transforms/quantize.h"
#include "recis_convert/transforms/row_delta.h"
#include "recis_convert/transforms/row_eviction.h"

namespace recis_convert {
namespace {

// A RecIS-style header with `count` tensors: per table an id [N] and three [N, 16] F32 slots.
std::string make_header_json(size_t count, uint64_t rows, uint64_t* data_bytes) {
  std::vector<TensorInfo> tensors;
  uint64_t offset = 0;
  const char* slots[] = {"id", "embedding", "sparse_adamw_exp_avg", "sparse_adamw_exp_avg_sq"};
  for (size_t i = 0; i < count; ++i) {
    TensorInfo t;
    const bool id = i % 4 == 0;
    t.name = "table_" + std::to_string(i / 4) + "." + slots[i % 4] + "/part_0_1";
    t.dtype = id ? DType::kI64 : DType::kF32;
    t.dtype_spelling = id ? "I64" : "F32";
    t.shape = id ? std::vector<uint64_t>{rows} : std::vector<uint64_t>{rows, 16};
    t.begin = offset;
    t.end = offset + (id ? rows * 8 : rows * 64);
    offset = t.end;
    tensors.push_back(t);
  }
  *data_bytes = offset;
  return serialize_recis_header(tensors, std::nullopt).substr(kLengthPrefixBytes);
}

void BM_ParseHeader(benchmark::State& state) {
  uint64_t data_bytes = 0;
  const std::string json = make_header_json(static_cast<size_t>(state.range(0)), 1000, &data_bytes);
  for (auto _ : state) {
    auto parsed = parse_safetensors_header(json, kLengthPrefixBytes + json.size() + data_bytes, "bench");
    if (!parsed) state.SkipWithError(parsed.error().message.c_str());
    benchmark::DoNotOptimize(parsed);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(json.size()));
}
BENCHMARK(BM_ParseHeader)->Arg(10)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

void BM_PlanFilteredFile(benchmark::State& state) {
  uint64_t data_bytes = 0;
  const std::string json = make_header_json(static_cast<size_t>(state.range(0)), 1000, &data_bytes);
  auto header = parse_safetensors_header(json, kLengthPrefixBytes + json.size() + data_bytes, "bench");
  std::vector<bool> keep;
  for (const auto& t : header.value().tensors) keep.push_back(t.name.find(".sparse_") == std::string::npos);
  for (auto _ : state) benchmark::DoNotOptimize(lay_out_filtered_file(header.value(), keep));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PlanFilteredFile)->Arg(10)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

void BM_Checksum(benchmark::State& state) {
  std::string data(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Checksum::of(data.data(), data.size()));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Checksum)->Arg(1 << 20)->Arg(8 << 20);

// The manifest's checksum in pieces (checksum.h) of 64 MiB data in 1 MiB updates, pieces of arg MiB (0: one piece):
// against BM_Checksum, what cutting a stream into pieces costs.
void BM_PieceChecksum(benchmark::State& state) {
  const size_t total = size_t{64} << 20, update = size_t{1} << 20;
  std::string data(total, 'x');
  for (auto _ : state) {
    PieceChecksum checksum(static_cast<uint64_t>(state.range(0)) << 20);
    for (size_t at = 0; at < total; at += update) checksum.update(data.data() + at, update);
    benchmark::DoNotOptimize(checksum.digest());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(total));
}
BENCHMARK(BM_PieceChecksum)->Arg(0)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond);

// The copy benchmarks copy one 256 MiB file (page cache warm; $RECIS_BENCH_COPY_MIB overrides the size) in
// /dev/shm or $RECIS_BENCH_DIR. BM_PlainCopyLoop is their baseline: read + write through one window of the same
// size with no checksum, the least a user-space copy can do.
struct CopyBenchFiles {
  std::string dir, src, dst;
  size_t size;
  CopyBenchFiles() {
    const char* dir_env = std::getenv("RECIS_BENCH_DIR");
    dir = std::string(dir_env ? dir_env : "/dev/shm") + "/recis-bench-copy";
    src = dir + "/src";
    dst = dir + "/dst";
    const char* size_env = std::getenv("RECIS_BENCH_COPY_MIB");
    size = static_cast<size_t>(size_env ? std::atoi(size_env) : 256) << 20;
    remove_tree(dir);
    ::mkdir(dir.c_str(), 0755);
    std::string chunk(1 << 20, 'r');
    int fd = ::open(src.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t i = 0; i < size / chunk.size(); ++i) {
      if (::write(fd, chunk.data(), chunk.size()) < 0) break;
    }
    ::close(fd);
  }
  ~CopyBenchFiles() { remove_tree(dir); }
};

// Args: the CopyPath (0 kernel-windows, 1 kernel-extents, 2 buffered), the window KiB; the buffer is 8 MiB.
void BM_CopyEngine(benchmark::State& state) {
  CopyBenchFiles files;
  const auto path = static_cast<CopyPath>(state.range(0));
  CopyEngine engine(size_t{8} << 20, path, 64u << 20, static_cast<size_t>(state.range(1)) << 10);
  engine.set_hashing_cpus(usable_cpus());  // as the export sets it: kernel-extents hashes pieces on each CPU
  FileLayout plan;
  plan.ranges = {{0, files.size}};
  for (auto _ : state) {
    int src = ::open(files.src.c_str(), O_RDONLY);
    int dst = ::open(files.dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    auto outcome = engine.write(src, files.src, dst, files.dst, plan);
    if (!outcome) state.SkipWithError(outcome.error().message.c_str());
    ::close(src);
    ::close(dst);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(files.size));
  state.SetLabel(copy_path_name(engine.path()));
}
BENCHMARK(BM_CopyEngine)
    ->ArgsProduct({{0, 1, 2}, {256, 1024, 8192}})
    ->ArgNames({"path", "window_kib"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Arg: the window KiB.
void BM_PlainCopyLoop(benchmark::State& state) {
  CopyBenchFiles files;
  std::vector<char> window(static_cast<size_t>(state.range(0)) << 10);
  for (auto _ : state) {
    int src = ::open(files.src.c_str(), O_RDONLY);
    int dst = ::open(files.dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t at = 0; at < files.size; at += window.size()) {
      if (::pread(src, window.data(), window.size(), static_cast<off_t>(at)) <= 0 ||
          ::pwrite(dst, window.data(), window.size(), static_cast<off_t>(at)) <= 0) {
        state.SkipWithError("plain copy failed");
        break;
      }
    }
    ::close(src);
    ::close(dst);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(files.size));
}
BENCHMARK(BM_PlainCopyLoop)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

// Rows per second of one serving dtype at dim 64: float32 rows in, stored rows out, through the transform the
// export uses (conversion, then decoding and the error sums). Arg: the ServingDType.
void BM_ServingDType(benchmark::State& state) {
  const auto dtype = static_cast<ServingDType>(state.range(0));
  constexpr uint64_t kRows = 4096, kDim = 64;
  std::vector<float> values(kRows * kDim);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(static_cast<float>(i) * 0.01f);
  QuantizationLedger ledger;
  RowTransformChain chain;
  chain.add(std::make_unique<EmbeddingQuantizer>(EmbeddingDTypes{dtype, {}}, &ledger));
  auto rows = chain.prepare({"t", "embedding", "t.embedding/part_0_1", "bench"},
                            RowLayout::of_tensor(DType::kF32, "F32", {kRows, kDim}));
  if (!rows) {
    state.SkipWithError(rows.error().describe().c_str());
    return;
  }
  std::vector<unsigned char> out;
  for (auto _ : state) {
    auto done = rows.value().apply(reinterpret_cast<const unsigned char*>(values.data()), kRows, 0, out);
    benchmark::DoNotOptimize(out.data());
    if (!done) state.SkipWithError(done.error().describe().c_str());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRows));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(kRows * kDim * sizeof(float)));
  state.SetLabel(option_name(dtype));
}
BENCHMARK(BM_ServingDType)
    ->DenseRange(static_cast<int>(ServingDType::kFp16), static_cast<int>(ServingDType::kInt2))
    ->Unit(benchmark::kMicrosecond);

// Rows per second of the delta's decision (decide_by_change) and of compacting the kept rows, over one chunk of a
// step_filter column in which 5% of the rows changed. Arg 0: decide only; arg 1: decide, then compact 32-byte rows.
void BM_DeltaRows(benchmark::State& state) {
  constexpr uint64_t kRows = 1 << 17, kRowBytes = 32;
  std::vector<int64_t> steps(kRows);
  for (uint64_t i = 0; i < kRows; ++i) steps[i] = (i * 2654435761u) % 100 < 5 ? 200 : 100;
  std::vector<unsigned char> keep(kRows), rows(kRows * kRowBytes);
  for (auto _ : state) {
    std::fill(keep.begin(), keep.end(), 1);
    uint64_t kept = decide_by_change(reinterpret_cast<const unsigned char*>(steps.data()), kRows, 100, keep.data());
    if (state.range(0)) kept = compact_rows(rows.data(), kRowBytes, keep.data(), kRows);
    benchmark::DoNotOptimize(kept);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRows));
}
BENCHMARK(BM_DeltaRows)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// Rows per second of the kept-row bitmap (transforms/kept_row_bitmap.h), 5% of rows kept: recording a chunk's
// decisions (the count pass), and reading them back as kept-row offsets (the write pass, once per slot).
std::vector<unsigned char> five_percent_kept(uint64_t rows) {
  std::vector<unsigned char> keep(rows);
  for (uint64_t i = 0; i < rows; ++i) keep[i] = (i * 2654435761u) % 100 < 5 ? 1 : 0;
  return keep;
}

void BM_KeptRowBitmapRecord(benchmark::State& state) {
  constexpr uint64_t kRows = 1 << 17;
  const auto keep = five_percent_kept(kRows);
  const std::string path = "/tmp/recis-bench-bits." + std::to_string(::getpid());
  {
    auto writer = KeptRowBitmapWriter::create(path);
    if (!writer) {
      state.SkipWithError(writer.error().describe().c_str());
      return;
    }
    for (auto _ : state) {
      auto appended = writer.value().append(keep.data(), kRows);
      if (!appended) state.SkipWithError(appended.error().describe().c_str());
    }
    (void)writer.value().finish();
  }
  ::unlink(path.c_str());
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRows));
}
BENCHMARK(BM_KeptRowBitmapRecord)->Unit(benchmark::kMicrosecond);

void BM_KeptRowBitmapReadKept(benchmark::State& state) {
  constexpr uint64_t kRows = 1 << 17;
  const auto keep = five_percent_kept(kRows);
  const std::string path = "/tmp/recis-bench-bits." + std::to_string(::getpid());
  auto writer = KeptRowBitmapWriter::create(path);
  if (!writer || !writer.value().append(keep.data(), kRows) || !writer.value().finish()) {
    state.SkipWithError("cannot write the bitmap");
    return;
  }
  auto reader = KeptRowBitmapReader::open(path, kRows);
  std::vector<uint32_t> kept;
  for (auto _ : state) {
    auto read = reader.value().read_kept(3, kRows - 3, kept);
    if (!read) state.SkipWithError(read.error().describe().c_str());
    benchmark::DoNotOptimize(kept.data());
  }
  ::unlink(path.c_str());
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kRows));
}
BENCHMARK(BM_KeptRowBitmapReadKept)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace recis_convert

BENCHMARK_MAIN();
