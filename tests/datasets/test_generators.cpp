// Tests of the input generators [eff]: determinism in the seed, the structured generator's measurable
// properties (sink norm, drift, outlier channels, RoPE's relative-position property), and the HDF5
// capture reader (round trip, bf16 words, cropping, errors naming the file).
#include <H5Cpp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <vector>

#include "attnbench/rng.hpp"
#include "datasets/generators.hpp"
#include "support/problems.hpp"

using namespace attnbench;
using namespace attnbench::datasets;

namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.data(), b.data(), a.nbytes()) == 0;
}
bool same_inputs(const Inputs& a, const Inputs& b) {
  return same_bytes(a.q, b.q) && same_bytes(a.k, b.k) && same_bytes(a.v, b.v);
}

// Row t of (b, h) as doubles.
std::vector<double> row(const Tensor& t, std::int64_t b, std::int64_t h, std::int64_t i) {
  const auto& s = t.shape();
  std::vector<double> r(static_cast<std::size_t>(s[3]));
  for (std::int64_t c = 0; c < s[3]; ++c)
    r[static_cast<std::size_t>(c)] = t.get(((b * s[1] + h) * s[2] + i) * s[3] + c);
  return r;
}
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}
double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b));
}

Problem shape(std::int64_t q_len, std::int64_t kv_len, std::int64_t heads = 4, std::int64_t kv_heads = 2,
              std::int64_t dim = 32, Dtype dtype = Dtype::f32) {
  return testing::make_problem({2, heads, kv_heads, q_len, kv_len, dim, dim}, "causal", dtype);
}

}  // namespace

TEST_CASE("generators: the same seed gives the same bytes, another seed other bytes", "[eff][generators]") {
  for (const Dtype dtype : {Dtype::f32, Dtype::bf16}) {
    const Problem p = shape(48, 64, 4, 2, 32, dtype);
    CHECK(same_inputs(gaussian_inputs(p, 7), gaussian_inputs(p, 7)));
    CHECK_FALSE(same_bytes(gaussian_inputs(p, 7).k, gaussian_inputs(p, 8).k));
    CHECK(same_inputs(structured_inputs(p, 7), structured_inputs(p, 7)));
    const Inputs a = structured_inputs(p, 7), b = structured_inputs(p, 8);
    CHECK_FALSE(same_bytes(a.q, b.q));
    CHECK_FALSE(same_bytes(a.k, b.k));
    CHECK_FALSE(same_bytes(a.v, b.v));
    StructuredSpec other;
    other.rope_base = 500;
    CHECK_FALSE(same_bytes(structured_inputs(p, 7, other).k, a.k));
    CHECK(a.q.dtype() == dtype);
  }
}

TEST_CASE("structured: the sink key's norm dwarfs the others'", "[eff][generators]") {
  const Problem p = shape(256, 256, 2, 2, 64);
  StructuredSpec spec;
  spec.sink_scale = 8;
  const Inputs in = structured_inputs(p, 3, spec);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t h = 0; h < 2; ++h) {
      const double sink = std::sqrt(dot(row(in.k, b, h, 0), row(in.k, b, h, 0)));
      double others = 0;
      for (std::int64_t t = 1; t < 256; ++t) others += std::sqrt(dot(row(in.k, b, h, t), row(in.k, b, h, t))) / 255;
      INFO("sink norm " << sink << ", mean other norm " << others);
      CHECK(sink > 5 * others);
    }
  // Without the sink scale the first key is an ordinary one.
  spec.sink_scale = 1;
  const Inputs flat = structured_inputs(p, 3, spec);
  const double first = std::sqrt(dot(row(flat.k, 0, 0, 0), row(flat.k, 0, 0, 0)));
  CHECK(first < 2 * std::sqrt(64.0));
}

TEST_CASE("structured: neighbouring keys are more alike than distant ones", "[eff][generators]") {
  const Problem p = shape(512, 512, 2, 2, 64);
  const Inputs in = structured_inputs(p, 5);  // defaults: drift 0.95, RoPE base 10000, 2 outlier channels
  double near = 0, far = 0;
  for (std::int64_t t = 1; t + 256 < 512; ++t) {
    near += cosine(row(in.k, 0, 0, t), row(in.k, 0, 0, t + 1));
    far += cosine(row(in.k, 0, 0, t), row(in.k, 0, 0, t + 256));
  }
  near /= 255;
  far /= 255;
  INFO("mean cosine of neighbours " << near << ", of keys 256 apart " << far);
  CHECK(near > 0.8);
  CHECK(near > far + 0.5);
  // drift 0: neighbours are as unrelated as distant keys.
  StructuredSpec iid;
  iid.drift = 0;
  iid.outliers = 0;
  iid.rope_base = 0;
  const Inputs w = structured_inputs(p, 5, iid);
  double near0 = 0;
  for (std::int64_t t = 1; t < 256; ++t) near0 += cosine(row(w.k, 0, 0, t), row(w.k, 0, 0, t + 1)) / 255;
  CHECK(std::abs(near0) < 0.1);
}

TEST_CASE("structured: outlier channels carry outlier_scale times the others' magnitude", "[eff][generators]") {
  StructuredSpec spec;
  spec.outliers = 3;
  spec.outlier_scale = 10;
  spec.rope_base = 0;  // RoPE would mix each outlier channel with its partner
  const Problem p = shape(512, 512, 2, 1, 32);
  const Inputs in = structured_inputs(p, 9, spec);
  auto rms = [&](const Tensor& t, std::int64_t h) {
    std::vector<double> r(32, 0.0);
    for (std::int64_t i = 1; i < 512; ++i) {
      const auto x = row(t, 0, h, i);
      for (std::size_t c = 0; c < 32; ++c) r[c] += x[c] * x[c] / 511;
    }
    for (auto& v : r) v = std::sqrt(v);
    return r;
  };
  const auto k = rms(in.k, 0), q0 = rms(in.q, 0), q1 = rms(in.q, 1);
  std::vector<std::size_t> big;
  for (std::size_t c = 0; c < 32; ++c)
    if (k[c] > 4) big.push_back(c);
  CHECK(big.size() == 3);
  for (const std::size_t c : big) {
    CHECK(k[c] == Approx(10).epsilon(0.35));
    CHECK(q0[c] > 4);  // both query heads of the group share the kv head's outlier channels
    CHECK(q1[c] > 4);
  }
}

TEST_CASE("apply_rope: q·k depends only on the relative position", "[eff][generators]") {
  const std::int64_t len = 40, dim = 16;
  Tensor q(Dtype::f64, {1, 1, len, dim}), k(Dtype::f64, {1, 1, len, dim});
  Rng rng(1);
  std::vector<double> x(dim), y(dim);
  for (auto& v : x) v = rng.normal();
  for (auto& v : y) v = rng.normal();
  for (std::int64_t i = 0; i < len; ++i)
    for (std::int64_t c = 0; c < dim; ++c) {
      q.set(i * dim + c, x[static_cast<std::size_t>(c)]);
      k.set(i * dim + c, y[static_cast<std::size_t>(c)]);
    }
  apply_rope(q, 100.0, 7);  // queries at positions 7..46, keys at 0..39
  apply_rope(k, 100.0, 0);
  for (std::int64_t i = 0; i + 5 < len; ++i)
    for (std::int64_t j = 0; j + 5 < len; ++j)
      CHECK(dot(row(q, 0, 0, i), row(k, 0, 0, j)) ==
            Approx(dot(row(q, 0, 0, i + 5), row(k, 0, 0, j + 5))).margin(1e-9));
  // A rotation keeps norms, and the product does change with the distance.
  CHECK(dot(row(q, 0, 0, 3), row(q, 0, 0, 3)) == Approx(dot(x, x)));
  CHECK(std::abs(dot(row(q, 0, 0, 0), row(k, 0, 0, 0)) - dot(row(q, 0, 0, 0), row(k, 0, 0, 9))) > 1e-3);
  // Base 0 is the identity.
  Tensor same(k.dtype(), k.shape());
  std::memcpy(same.data(), k.data(), k.nbytes());
  apply_rope(same, 0.0, 3);
  CHECK(same_bytes(same, k));
}

namespace {

// A capture file written the way capture_qkv.py writes one.
struct Capture {
  std::string path;
  std::int64_t b = 2, hq = 4, hkv = 2, lq = 6, lk = 10, d = 8;
  Capture(const std::string& name, bool bf16 = false)
      : path((std::filesystem::temp_directory_path() / ("attnbench_eff_" + name + ".h5")).string()) {
    H5::H5File f(path, H5F_ACC_TRUNC);
    write(f, "q", {b, hq, lq, d}, 1, bf16);
    write(f, "k", {b, hkv, lk, d}, 2, bf16);
    write(f, "v", {b, hkv, lk, d}, 3, bf16);
    H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
    const std::string model = "tiny-test";
    f.createAttribute("model", str, H5::DataSpace(H5S_SCALAR)).write(str, model);
    const std::int64_t one = 1;
    f.createAttribute("rope_applied", H5::PredType::NATIVE_INT64, H5::DataSpace(H5S_SCALAR))
        .write(H5::PredType::NATIVE_INT64, &one);
  }
  ~Capture() { std::filesystem::remove(path); }
  // Each element tells where it came from; bf16 files are compared against this value's bf16 rounding.
  static double value(int which, std::int64_t b, std::int64_t h, std::int64_t t, std::int64_t c) {
    return which * 100.0 + b * 30.0 + h * 7.0 + t + c / 8.0;
  }
  static void write(H5::H5File& f, const char* name, std::array<std::int64_t, 4> s, int which, bool bf16) {
    const hsize_t dims[4] = {static_cast<hsize_t>(s[0]), static_cast<hsize_t>(s[1]), static_cast<hsize_t>(s[2]),
                             static_cast<hsize_t>(s[3])};
    std::vector<float> data;
    for (std::int64_t b = 0; b < s[0]; ++b)
      for (std::int64_t h = 0; h < s[1]; ++h)
        for (std::int64_t t = 0; t < s[2]; ++t)
          for (std::int64_t c = 0; c < s[3]; ++c) data.push_back(static_cast<float>(value(which, b, h, t, c)));
    const H5::DataSpace space(4, dims);
    if (!bf16) {
      f.createDataSet(name, H5::PredType::IEEE_F32LE, space).write(data.data(), H5::PredType::NATIVE_FLOAT);
      return;
    }
    std::vector<std::uint16_t> words(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) words[i] = float_to_bf16(data[i]);
    H5::DataSet ds = f.createDataSet(name, H5::PredType::STD_U16LE, space);
    ds.write(words.data(), H5::PredType::NATIVE_UINT16);
    H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
    const std::string enc = "bfloat16";
    ds.createAttribute("encoding", str, H5::DataSpace(H5S_SCALAR)).write(str, enc);
  }
};

}  // namespace

TEST_CASE("hdf5: a capture file reads back, cropped bottom-right, in fp32 and bf16 words", "[eff][generators][hdf5]") {
  for (const bool bf16 : {false, true}) {
    const Capture cap(bf16 ? "bf16" : "f32", bf16);
    const Hdf5Layout l = read_hdf5_layout(cap.path);
    CHECK(l.batch == 2);
    CHECK(l.heads == 4);
    CHECK(l.kv_heads == 2);
    CHECK(l.q_len == 6);
    CHECK(l.kv_len == 10);
    CHECK(l.head_dim == 8);
    CHECK(l.model == "tiny-test");
    CHECK(l.rope_applied);
    // One sequence, 2 q heads over 1 kv head (the file's group of 2), 3 queries ending at key 8.
    Problem p = testing::make_problem({1, 2, 1, 3, 8, 8, 8}, "causal");
    const Inputs in = hdf5_inputs(p, cap.path);
    REQUIRE(in.q.shape() == std::array<std::int64_t, 4>{1, 2, 3, 8});
    REQUIRE(in.k.shape() == std::array<std::int64_t, 4>{1, 1, 8, 8});
    auto expect = [&](int which, std::int64_t h, std::int64_t t, std::int64_t c) {
      const double v = Capture::value(which, 0, h, t, c);
      return bf16 ? static_cast<double>(bf16_to_float(float_to_bf16(static_cast<float>(v)))) : v;
    };
    // Query i sits at absolute position i + 4 in the file (10 keys, 6 queries); the task's 3 queries
    // end at position 8, so they are the file's queries 1, 2, 3.
    for (std::int64_t h = 0; h < 2; ++h)
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t c = 0; c < 8; ++c) CHECK(in.q.get((h * 3 + i) * 8 + c) == expect(1, h, i + 1, c));
    for (std::int64_t t = 0; t < 8; ++t)
      for (std::int64_t c = 0; c < 8; ++c) {
        CHECK(in.k.get(t * 8 + c) == expect(2, 0, t, c));
        CHECK(in.v.get(t * 8 + c) == expect(3, 0, t, c));
      }
  }
}

TEST_CASE("hdf5: what the file cannot serve is refused, naming the file", "[eff][generators][hdf5]") {
  const Capture cap("refusals");
  auto refusal = [&](const Problem& p) {
    try {
      hdf5_inputs(p, cap.path);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  using testing::make_problem;
  CHECK_THAT(refusal(make_problem({3, 2, 1, 3, 8, 8, 8}, "causal")),
             Catch::Contains(cap.path) && Catch::Contains("batch 3"));
  CHECK_THAT(refusal(make_problem({1, 2, 1, 3, 11, 8, 8}, "causal")), Catch::Contains("kv_len 11"));
  CHECK_THAT(refusal(make_problem({1, 2, 1, 3, 8, 16, 16}, "causal")), Catch::Contains("head dim 16"));
  CHECK_THAT(refusal(make_problem({1, 2, 2, 3, 8, 8, 8}, "causal")), Catch::Contains("GQA group"));
  CHECK_THAT(refusal(make_problem({1, 2, 1, 8, 8, 8, 8}, "causal")), Catch::Contains("not all in the file"));

  const std::string missing = (std::filesystem::temp_directory_path() / "attnbench_eff_missing.h5").string();
  CHECK_THROWS_WITH(read_hdf5_layout(missing), Catch::Contains(missing) && Catch::Contains("no such file"));
  const std::string text = (std::filesystem::temp_directory_path() / "attnbench_eff_text.h5").string();
  {
    std::FILE* f = std::fopen(text.c_str(), "w");
    std::fputs("not hdf5", f);
    std::fclose(f);
  }
  CHECK_THROWS_WITH(read_hdf5_layout(text), Catch::Contains("is not an HDF5 file"));
  std::filesystem::remove(text);

  const std::string bad = (std::filesystem::temp_directory_path() / "attnbench_eff_bad.h5").string();
  {
    H5::H5File f(bad, H5F_ACC_TRUNC);
    const hsize_t d4[4] = {1, 1, 4, 8}, d3[3] = {1, 4, 8};
    std::vector<float> zeros(32, 0.0f);
    f.createDataSet("q", H5::PredType::IEEE_F32LE, H5::DataSpace(4, d4))
        .write(zeros.data(), H5::PredType::NATIVE_FLOAT);
    f.createDataSet("k", H5::PredType::IEEE_F32LE, H5::DataSpace(3, d3))
        .write(zeros.data(), H5::PredType::NATIVE_FLOAT);
  }
  CHECK_THROWS_WITH(read_hdf5_layout(bad), Catch::Contains("\"k\" has rank 3"));
  {
    H5::H5File f(bad, H5F_ACC_TRUNC);
    const hsize_t d4[4] = {1, 1, 4, 8};
    std::vector<std::int16_t> zeros(32, 0);
    f.createDataSet("q", H5::PredType::STD_I16LE, H5::DataSpace(4, d4)).write(zeros.data(), H5::PredType::NATIVE_INT16);
  }
  CHECK_THROWS_WITH(read_hdf5_layout(bad), Catch::Contains("without the attribute encoding"));
  {
    H5::H5File f(bad, H5F_ACC_TRUNC);
    const hsize_t d4[4] = {1, 1, 4, 8};
    std::vector<float> zeros(32, 0.0f);
    f.createDataSet("q", H5::PredType::IEEE_F32LE, H5::DataSpace(4, d4))
        .write(zeros.data(), H5::PredType::NATIVE_FLOAT);
    f.createDataSet("k", H5::PredType::IEEE_F32LE, H5::DataSpace(4, d4))
        .write(zeros.data(), H5::PredType::NATIVE_FLOAT);
  }
  CHECK_THROWS_WITH(read_hdf5_layout(bad), Catch::Contains("has no dataset \"v\""));
  std::filesystem::remove(bad);
}
