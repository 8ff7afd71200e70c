// The `hdf5` input generator: Q, K, V a user captured from a real model (layout in docs/datasets.md).
#include <H5Cpp.h>

#include <array>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/generators.hpp"

namespace attnbench::datasets {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

struct Dataset {
  H5::DataSet ds;
  std::array<hsize_t, 4> dims{};
  bool bf16 = false;  // uint16 words holding bfloat16 (attribute encoding = "bfloat16")
};

std::string string_attr(const H5::H5Object& obj, const char* name) {
  if (!obj.attrExists(name)) return "";
  H5::Attribute a = obj.openAttribute(name);
  if (a.getTypeClass() != H5T_STRING) return "";
  std::string s;
  a.read(a.getStrType(), s);
  return s;
}

Dataset open_dataset(const H5::H5File& file, const std::string& path, const char* name) {
  if (H5Lexists(file.getId(), name, H5P_DEFAULT) <= 0)
    fail(path, std::string("has no dataset \"") + name + "\" (expected datasets q, k, v of shape [B, H, L, D])");
  Dataset d{file.openDataSet(name), {}, false};
  const H5::DataSpace space = d.ds.getSpace();
  if (space.getSimpleExtentNdims() != 4)
    fail(path, std::string("dataset \"") + name + "\" has rank " + std::to_string(space.getSimpleExtentNdims()) +
                   ", expected 4 ([B, H, L, D])");
  space.getSimpleExtentDims(d.dims.data());
  const H5T_class_t cls = d.ds.getTypeClass();
  if (cls == H5T_FLOAT) return d;
  if (cls == H5T_INTEGER && d.ds.getIntType().getSize() == 2) {
    const std::string enc = string_attr(d.ds, "encoding");
    if (enc != "bfloat16")
      fail(path, std::string("dataset \"") + name +
                     "\" holds 16-bit integers without the attribute encoding = \"bfloat16\"; expected float32, "
                     "float16, or bfloat16 stored as uint16 with that attribute");
    d.bf16 = true;
    return d;
  }
  fail(path, std::string("dataset \"") + name +
                 "\" has an unsupported element type; expected float32, float16, or "
                 "bfloat16 stored as uint16 with attribute encoding = \"bfloat16\"");
}

// The hyperslab [0, b) x [0, h) x [t0, t0 + n) x [0, D) of a dataset, widened to float.
std::vector<float> read_slab(const Dataset& d, hsize_t b, hsize_t h, hsize_t t0, hsize_t n) {
  H5::DataSpace file_space = d.ds.getSpace();
  const hsize_t start[4] = {0, 0, t0, 0}, count[4] = {b, h, n, d.dims[3]};
  file_space.selectHyperslab(H5S_SELECT_SET, count, start);
  const H5::DataSpace mem_space(4, count);
  const std::size_t total = static_cast<std::size_t>(b * h * n * d.dims[3]);
  std::vector<float> out(total);
  if (d.bf16) {
    std::vector<std::uint16_t> words(total);
    d.ds.read(words.data(), H5::PredType::NATIVE_UINT16, mem_space, file_space);
    for (std::size_t i = 0; i < total; ++i) out[i] = bf16_to_float(words[i]);
  } else {
    d.ds.read(out.data(), H5::PredType::NATIVE_FLOAT, mem_space, file_space);
  }
  return out;
}

struct OpenCapture {
  H5::H5File file;
  Dataset q, k, v;
  Hdf5Layout layout;
};

OpenCapture open_capture(const std::string& path) {
  H5::Exception::dontPrint();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail(path, "no such file (expected an HDF5 capture of Q, K, V)");
  bool is_hdf5 = false;
  try {
    is_hdf5 = H5::H5File::isHdf5(path);
  } catch (const H5::Exception&) {
    is_hdf5 = false;
  }
  if (!is_hdf5) fail(path, "is not an HDF5 file (expected datasets q, k, v of shape [B, H, L, D])");
  OpenCapture c{H5::H5File(path, H5F_ACC_RDONLY), {}, {}, {}, {}};
  c.q = open_dataset(c.file, path, "q");
  c.k = open_dataset(c.file, path, "k");
  c.v = open_dataset(c.file, path, "v");
  const auto &q = c.q.dims, &k = c.k.dims, &v = c.v.dims;
  auto dims = [](const std::array<hsize_t, 4>& d) {
    std::string s(1, '[');  // appended piecewise: g++ 12 warns falsely (-Wrestrict) on "[" + ...
    for (std::size_t i = 0; i < 4; ++i) {
      s += std::to_string(d[i]);
      s += i < 3 ? ", " : "]";
    }
    return s;
  };
  if (k[0] != v[0] || k[1] != v[1] || k[2] != v[2])
    fail(path, "k " + dims(k) + " and v " + dims(v) + " must agree in batch, heads and length");
  if (q[0] != k[0]) fail(path, "q " + dims(q) + " and k " + dims(k) + " must have the same batch");
  if (q[3] != k[3]) fail(path, "q " + dims(q) + " and k " + dims(k) + " must have the same head dim");
  if (k[1] == 0 || q[1] % k[1] != 0)
    fail(path, "the heads of k " + dims(k) + " must divide the heads of q " + dims(q) + " (MHA, GQA or MQA)");
  if (q[2] > k[2]) fail(path, "q " + dims(q) + " is longer than k " + dims(k) + "; expected q_len <= kv_len");
  Hdf5Layout& l = c.layout;
  l.batch = static_cast<std::int64_t>(q[0]);
  l.heads = static_cast<std::int64_t>(q[1]);
  l.kv_heads = static_cast<std::int64_t>(k[1]);
  l.q_len = static_cast<std::int64_t>(q[2]);
  l.kv_len = static_cast<std::int64_t>(k[2]);
  l.head_dim = static_cast<std::int64_t>(q[3]);
  l.value_dim = static_cast<std::int64_t>(v[3]);
  l.model = string_attr(c.file, "model");
  if (c.file.attrExists("rope_applied")) {
    std::int64_t flag = 0;
    c.file.openAttribute("rope_applied").read(H5::PredType::NATIVE_INT64, &flag);
    l.rope_applied = flag != 0;
  }
  return c;
}

}  // namespace

Hdf5Layout read_hdf5_layout(const std::string& path) {
  try {
    return open_capture(path).layout;
  } catch (const H5::Exception& e) {
    throw std::runtime_error(path + ": cannot be read as a Q/K/V capture: " + e.getDetailMsg());
  }
}

Inputs hdf5_inputs(const Problem& p, const std::string& path) {
  try {
    OpenCapture c = open_capture(path);
    const Hdf5Layout& l = c.layout;
    auto need = [&](bool ok, const std::string& what) {
      if (!ok)
        fail(path, what + " (the file holds " + std::to_string(l.batch) + " sequences, q heads " +
                       std::to_string(l.heads) + ", kv heads " + std::to_string(l.kv_heads) + ", q_len " +
                       std::to_string(l.q_len) + ", kv_len " + std::to_string(l.kv_len) + ", head dim " +
                       std::to_string(l.head_dim) + ", value dim " + std::to_string(l.value_dim) + ")");
    };
    need(p.batch <= l.batch, "the task asks for batch " + std::to_string(p.batch));
    need(p.heads <= l.heads && p.kv_heads <= l.kv_heads,
         "the task asks for " + std::to_string(p.heads) + " q heads and " + std::to_string(p.kv_heads) + " kv heads");
    need(p.group_size() == l.heads / l.kv_heads || (p.heads <= l.heads / l.kv_heads && p.kv_heads == 1),
         "the task's GQA group (" + std::to_string(p.group_size()) + " q heads per kv head) differs from the file's");
    need(p.head_dim == l.head_dim && p.value_dim == l.value_dim,
         "the task asks for head dim " + std::to_string(p.head_dim) + " and value dim " + std::to_string(p.value_dim));
    need(p.kv_len <= l.kv_len, "the task asks for kv_len " + std::to_string(p.kv_len));
    // Queries end at absolute position kv_len; the file's query i sits at i + (file kv_len − file q_len).
    const std::int64_t q_start = p.kv_len - p.q_len - (l.kv_len - l.q_len);
    need(q_start >= 0 && q_start + p.q_len <= l.q_len, "the task's " + std::to_string(p.q_len) +
                                                           " queries ending at position " + std::to_string(p.kv_len) +
                                                           " are not all in the file");
    auto to_tensor = [&](const Dataset& d, std::int64_t heads, std::int64_t t0, std::int64_t len, std::int64_t dim) {
      const std::vector<float> slab = read_slab(d, static_cast<hsize_t>(p.batch), static_cast<hsize_t>(heads),
                                                static_cast<hsize_t>(t0), static_cast<hsize_t>(len));
      Tensor t(p.dtype, {p.batch, heads, len, dim});
      for (std::int64_t i = 0; i < t.numel(); ++i) t.set(i, slab[static_cast<std::size_t>(i)]);
      return t;
    };
    return Inputs{to_tensor(c.q, p.heads, q_start, p.q_len, p.head_dim),
                  to_tensor(c.k, p.kv_heads, 0, p.kv_len, p.head_dim),
                  to_tensor(c.v, p.kv_heads, 0, p.kv_len, p.value_dim)};
  } catch (const H5::Exception& e) {
    throw std::runtime_error(path + ": cannot be read as a Q/K/V capture: " + e.getDetailMsg());
  }
}

}  // namespace attnbench::datasets
