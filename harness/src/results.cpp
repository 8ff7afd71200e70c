// Result files in HDF5: root attributes, /cells, /samples and /metrics (the layout is in results/README.md).
#include "attnbench/results.hpp"

#include <H5Cpp.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <map>

#include "attnbench/build_info.hpp"

namespace attnbench {
namespace {

// Every HDF5 call here reports failure by exception; the library's own stack dump on stderr is noise.
void silence_hdf5() {
  static const bool once = [] {
    H5::Exception::dontPrint();
    return true;
  }();
  (void)once;
}

H5::StrType utf8_string() {
  H5::StrType t(H5::PredType::C_S1, H5T_VARIABLE);
  t.setCset(H5T_CSET_UTF8);
  return t;
}

// One row of /cells in memory. Strings are variable-length: on write they point into the CellRecord,
// on read HDF5 allocates them and vlenReclaim frees them.
struct CellRow {
  std::int64_t index;
  const char* id;
  const char* method;
  const char* method_name;
  const char* family;
  const char* method_params;
  const char* task;
  const char* task_kind;
  const char* task_params;
  std::uint64_t seed;
  const char* status;
  const char* reason;
  const char* device;
  std::int64_t threads;
  std::int64_t batch, heads, kv_heads, q_len, kv_len, head_dim, value_dim;
  const char* dtype;
  const char* mask;
  std::int8_t causal;
  double flops, bytes;
  std::int64_t warmup, samples;
  double median_s, mean_s, min_s, max_s, stddev_s, rse;
  std::int8_t converged;
  const char* stop_reason;
  std::int64_t peak_bytes;
  double started_unix, wall_s;
};

struct SampleRow {
  std::int64_t cell;
  std::int64_t sample;
  double seconds;
};

struct MetricRow {
  std::int64_t cell;
  const char* name;
  double value;
};

H5::CompType cell_type() {
  const H5::StrType str = utf8_string();
  const H5::PredType& i64 = H5::PredType::NATIVE_INT64;
  const H5::PredType& f64 = H5::PredType::NATIVE_DOUBLE;
  const H5::PredType& i8 = H5::PredType::NATIVE_INT8;
  H5::CompType t(sizeof(CellRow));
#define ATTNBENCH_MEMBER(field, type) t.insertMember(#field, offsetof(CellRow, field), type)
  ATTNBENCH_MEMBER(index, i64);
  ATTNBENCH_MEMBER(id, str);
  ATTNBENCH_MEMBER(method, str);
  ATTNBENCH_MEMBER(method_name, str);
  ATTNBENCH_MEMBER(family, str);
  ATTNBENCH_MEMBER(method_params, str);
  ATTNBENCH_MEMBER(task, str);
  ATTNBENCH_MEMBER(task_kind, str);
  ATTNBENCH_MEMBER(task_params, str);
  ATTNBENCH_MEMBER(seed, H5::PredType::NATIVE_UINT64);
  ATTNBENCH_MEMBER(status, str);
  ATTNBENCH_MEMBER(reason, str);
  ATTNBENCH_MEMBER(device, str);
  ATTNBENCH_MEMBER(threads, i64);
  ATTNBENCH_MEMBER(batch, i64);
  ATTNBENCH_MEMBER(heads, i64);
  ATTNBENCH_MEMBER(kv_heads, i64);
  ATTNBENCH_MEMBER(q_len, i64);
  ATTNBENCH_MEMBER(kv_len, i64);
  ATTNBENCH_MEMBER(head_dim, i64);
  ATTNBENCH_MEMBER(value_dim, i64);
  ATTNBENCH_MEMBER(dtype, str);
  ATTNBENCH_MEMBER(mask, str);
  ATTNBENCH_MEMBER(causal, i8);
  ATTNBENCH_MEMBER(flops, f64);
  ATTNBENCH_MEMBER(bytes, f64);
  ATTNBENCH_MEMBER(warmup, i64);
  ATTNBENCH_MEMBER(samples, i64);
  ATTNBENCH_MEMBER(median_s, f64);
  ATTNBENCH_MEMBER(mean_s, f64);
  ATTNBENCH_MEMBER(min_s, f64);
  ATTNBENCH_MEMBER(max_s, f64);
  ATTNBENCH_MEMBER(stddev_s, f64);
  ATTNBENCH_MEMBER(rse, f64);
  ATTNBENCH_MEMBER(converged, i8);
  ATTNBENCH_MEMBER(stop_reason, str);
  ATTNBENCH_MEMBER(peak_bytes, i64);
  ATTNBENCH_MEMBER(started_unix, f64);
  ATTNBENCH_MEMBER(wall_s, f64);
#undef ATTNBENCH_MEMBER
  return t;
}

H5::CompType sample_type() {
  H5::CompType t(sizeof(SampleRow));
  t.insertMember("cell", offsetof(SampleRow, cell), H5::PredType::NATIVE_INT64);
  t.insertMember("sample", offsetof(SampleRow, sample), H5::PredType::NATIVE_INT64);
  t.insertMember("seconds", offsetof(SampleRow, seconds), H5::PredType::NATIVE_DOUBLE);
  return t;
}

H5::CompType metric_type() {
  H5::CompType t(sizeof(MetricRow));
  t.insertMember("cell", offsetof(MetricRow, cell), H5::PredType::NATIVE_INT64);
  t.insertMember("name", offsetof(MetricRow, name), utf8_string());
  t.insertMember("value", offsetof(MetricRow, value), H5::PredType::NATIVE_DOUBLE);
  return t;
}

// A one-dimensional table that can hold zero rows and grow later: chunked, unlimited.
template <class Row>
void write_table(H5::H5File& file, const char* name, const H5::CompType& mem_type, const std::vector<Row>& rows) {
  const hsize_t n = rows.size();
  const hsize_t max_dims = H5S_UNLIMITED;
  const H5::DataSpace space(1, &n, &max_dims);
  H5::DSetCreatPropList props;
  const hsize_t chunk = std::min<hsize_t>(std::max<hsize_t>(n, 1), 4096);
  props.setChunk(1, &chunk);
  H5::CompType file_type(H5Tcopy(mem_type.getId()));  // a copy: pack() changes the type it is called on
  file_type.pack();                                   // no padding on disk
  H5::DataSet ds = file.createDataSet(name, file_type, space, props);
  if (n > 0) ds.write(rows.data(), mem_type);
}

template <class Row, class Use>
void read_table(const H5::H5File& file, const char* name, const H5::CompType& mem_type, Use use) {
  H5::DataSet ds = file.openDataSet(name);
  H5::DataSpace space = ds.getSpace();
  const hssize_t n = space.getSimpleExtentNpoints();
  if (n <= 0) return;
  std::vector<Row> rows(static_cast<std::size_t>(n));
  ds.read(rows.data(), mem_type);
  try {
    for (const Row& r : rows) use(r);
  } catch (...) {
    H5::DataSet::vlenReclaim(rows.data(), mem_type, space);
    throw;
  }
  H5::DataSet::vlenReclaim(rows.data(), mem_type, space);
}

void write_string_attr(H5::H5File& file, const char* name, const std::string& value) {
  const H5::StrType t = utf8_string();
  H5::Attribute a = file.createAttribute(name, t, H5::DataSpace(H5S_SCALAR));
  a.write(t, value);
}

std::string read_string_attr(const H5::H5File& file, const char* name) {
  H5::Attribute a = file.openAttribute(name);
  std::string value;
  a.read(a.getStrType(), value);
  return value;
}

std::string str(const char* s) { return s ? std::string(s) : std::string(); }

// The rename makes the new file visible; the fsync before it makes sure what it names is on disk.
void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

void write_hdf5(const std::string& path, const ResultsFile& r) {
  H5::H5File file(path, H5F_ACC_TRUNC);
  write_string_attr(file, "schema_version", r.schema_version);
  write_string_attr(file, "manifest", r.manifest_text);
  write_string_attr(file, "manifest_name", r.manifest_name);
  write_string_attr(file, "manifest_path", r.manifest_path);
  write_string_attr(file, "environment", r.environment);
  {
    H5::Attribute a = file.createAttribute("expected_cells", H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR));
    a.write(H5::PredType::NATIVE_INT64, &r.expected_cells);
  }
  write_string_attr(file, "created_by", std::string("attnbench ") + build_info::version);
  if (!r.shard.empty()) write_string_attr(file, "shard", r.shard);

  std::vector<CellRow> cells;
  std::vector<SampleRow> samples;
  std::vector<MetricRow> metrics;
  cells.reserve(r.cells.size());
  for (const CellRecord& c : r.cells) {
    const TimingStats& t = c.timing;
    cells.push_back(CellRow{c.index,
                            c.id.c_str(),
                            c.method.c_str(),
                            c.method_name.c_str(),
                            c.family.c_str(),
                            c.method_params.c_str(),
                            c.task.c_str(),
                            c.task_kind.c_str(),
                            c.task_params.c_str(),
                            c.seed,
                            c.status.c_str(),
                            c.reason.c_str(),
                            c.device.c_str(),
                            c.threads,
                            c.batch,
                            c.heads,
                            c.kv_heads,
                            c.q_len,
                            c.kv_len,
                            c.head_dim,
                            c.value_dim,
                            c.dtype.c_str(),
                            c.mask.c_str(),
                            static_cast<std::int8_t>(c.causal ? 1 : 0),
                            c.flops,
                            c.bytes,
                            t.warmup,
                            t.samples,
                            t.median_s,
                            t.mean_s,
                            t.min_s,
                            t.max_s,
                            t.stddev_s,
                            t.rse,
                            static_cast<std::int8_t>(t.converged ? 1 : 0),
                            t.stop_reason.c_str(),
                            c.peak_bytes,
                            c.started_unix,
                            c.wall_s});
    for (std::size_t i = 0; i < c.samples.size(); ++i)
      samples.push_back(SampleRow{c.index, static_cast<std::int64_t>(i), c.samples[i]});
    for (const auto& [name, value] : c.metrics) metrics.push_back(MetricRow{c.index, name.c_str(), value});
  }
  write_table(file, "cells", cell_type(), cells);
  write_table(file, "samples", sample_type(), samples);
  write_table(file, "metrics", metric_type(), metrics);
  file.close();
}

}  // namespace

void write_results(const std::string& path, const ResultsFile& r) {
  silence_hdf5();
  // Samples and metrics name their cell by index, so the index must say which cell is meant.
  std::map<std::int64_t, int> seen;
  for (const CellRecord& c : r.cells)
    if (seen[c.index]++ > 0)
      throw ResultsError("cannot write " + path + ": two cells have index " + std::to_string(c.index));

  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string tmp = path + ".tmp";
  try {
    write_hdf5(tmp, r);
  } catch (const H5::Exception& e) {
    std::remove(tmp.c_str());
    throw ResultsError("cannot write results to " + tmp + ": " + e.getDetailMsg());
  }
  sync_file(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw ResultsError("cannot rename " + tmp + " to " + path);
  }
}

ResultsFile read_results(const std::string& path) {
  silence_hdf5();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw ResultsError("results file " + path + " does not exist");
  bool is_hdf5 = false;
  try {
    is_hdf5 = std::filesystem::is_regular_file(path, ec) && H5::H5File::isHdf5(path);
  } catch (const H5::Exception&) {
    is_hdf5 = false;
  }
  if (!is_hdf5) throw ResultsError(path + " is not an HDF5 file (expected an attnbench result file)");

  ResultsFile r;
  r.path = path;
  try {
    H5::H5File file(path, H5F_ACC_RDONLY);
    if (!file.attrExists("schema_version"))
      throw ResultsError(path + " is not an attnbench result file (no schema_version attribute)");
    r.schema_version = read_string_attr(file, "schema_version");
    if (r.schema_version != kSchemaVersion)
      throw ResultsError(path + " has schema '" + r.schema_version + "', but this build reads only '" + kSchemaVersion +
                         "'");
    r.manifest_text = read_string_attr(file, "manifest");
    r.manifest_name = read_string_attr(file, "manifest_name");
    r.manifest_path = read_string_attr(file, "manifest_path");
    r.environment = read_string_attr(file, "environment");
    file.openAttribute("expected_cells").read(H5::PredType::NATIVE_INT64, &r.expected_cells);
    if (file.attrExists("shard")) r.shard = read_string_attr(file, "shard");

    std::map<std::int64_t, std::size_t> row_of_index;
    read_table<CellRow>(file, "cells", cell_type(), [&](const CellRow& row) {
      CellRecord c;
      c.index = row.index;
      c.id = str(row.id);
      c.method = str(row.method);
      c.method_name = str(row.method_name);
      c.family = str(row.family);
      c.method_params = str(row.method_params);
      c.task = str(row.task);
      c.task_kind = str(row.task_kind);
      c.task_params = str(row.task_params);
      c.seed = row.seed;
      c.status = str(row.status);
      c.reason = str(row.reason);
      c.device = str(row.device);
      c.threads = row.threads;
      c.batch = row.batch;
      c.heads = row.heads;
      c.kv_heads = row.kv_heads;
      c.q_len = row.q_len;
      c.kv_len = row.kv_len;
      c.head_dim = row.head_dim;
      c.value_dim = row.value_dim;
      c.dtype = str(row.dtype);
      c.mask = str(row.mask);
      c.causal = row.causal != 0;
      c.flops = row.flops;
      c.bytes = row.bytes;
      c.timing.warmup = row.warmup;
      c.timing.samples = row.samples;
      c.timing.median_s = row.median_s;
      c.timing.mean_s = row.mean_s;
      c.timing.min_s = row.min_s;
      c.timing.max_s = row.max_s;
      c.timing.stddev_s = row.stddev_s;
      c.timing.rse = row.rse;
      c.timing.converged = row.converged != 0;
      c.timing.stop_reason = str(row.stop_reason);
      c.peak_bytes = row.peak_bytes;
      c.started_unix = row.started_unix;
      c.wall_s = row.wall_s;
      row_of_index.emplace(c.index, r.cells.size());
      r.cells.push_back(std::move(c));
    });
    auto cell_at = [&](std::int64_t index, const char* table) -> CellRecord& {
      const auto it = row_of_index.find(index);
      if (it == row_of_index.end())
        throw ResultsError(path + ": /" + table + " names cell " + std::to_string(index) + ", which /cells lacks");
      return r.cells[it->second];
    };
    read_table<SampleRow>(file, "samples", sample_type(),
                          [&](const SampleRow& row) { cell_at(row.cell, "samples").samples.push_back(row.seconds); });
    read_table<MetricRow>(file, "metrics", metric_type(), [&](const MetricRow& row) {
      cell_at(row.cell, "metrics").metrics.emplace_back(str(row.name), row.value);
    });
  } catch (const H5::Exception& e) {
    throw ResultsError(path + " is not a readable attnbench result file: " + e.getDetailMsg());
  }
  return r;
}

}  // namespace attnbench
