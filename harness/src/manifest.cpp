// Manifest parsing, validation that names the JSON path of every error, and deterministic expansion.
#include "attnbench/manifest.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "attnbench/method.hpp"
#include "attnbench/rng.hpp"
#include "attnbench/task.hpp"

namespace attnbench {

ManifestError::ManifestError(std::string file, std::string json_path, std::string expected)
    : std::runtime_error((file.empty() ? std::string("<manifest>") : file) + ": " + json_path + ": " + expected),
      file_(std::move(file)),
      json_path_(std::move(json_path)),
      expected_(std::move(expected)) {}

namespace {

std::string kind_of(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "an array";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  return "null";
}

std::string key_path(const std::string& parent, const std::string& key) {
  bool plain = !key.empty();
  for (char c : key) plain &= (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  return plain ? parent + "." + key : parent + "[" + json(key).dump() + "]";
}

// Parses JSON, refusing duplicate keys (nlohmann keeps the last silently) and naming where they are.
json parse_strict(const std::string& text, const std::string& file) {
  struct Frame {
    bool array;
    std::int64_t index = 0;
    std::string key;
    std::set<std::string> keys;
    std::string path;
  };
  std::vector<Frame> stack;
  auto child_path = [&]() -> std::string {
    if (stack.empty()) return "$";
    const Frame& f = stack.back();
    return f.array ? f.path + "[" + std::to_string(f.index) + "]" : key_path(f.path, f.key);
  };
  auto after_value = [&] {
    if (!stack.empty() && stack.back().array) ++stack.back().index;
  };
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
        stack.push_back({false, 0, "", {}, child_path()});
        break;
      case json::parse_event_t::array_start:
        stack.push_back({true, 0, "", {}, child_path()});
        break;
      case json::parse_event_t::key: {
        Frame& f = stack.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second)
          throw ManifestError(file, key_path(f.path, f.key), "key appears twice in the same object");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        after_value();
        break;
      case json::parse_event_t::value:
        after_value();
        break;
    }
    return true;
  };
  try {
    return json::parse(text, cb);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into line:column, which is what an editor shows.
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    if (auto p = what.find("syntax error"); p != std::string::npos) what = what.substr(p);
    throw ManifestError(
        file, "$", "valid JSON, but line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what);
  }
}

class Validator {
 public:
  explicit Validator(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& expected) const {
    throw ManifestError(file_, path, expected);
  }
  void expect_object(const json& v, const std::string& path) const {
    if (!v.is_object()) fail(path, "expected an object, got " + kind_of(v));
  }
  void only_keys(const json& obj, const std::string& path, const std::set<std::string>& allowed) const {
    for (const auto& [k, _] : obj.items())
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(key_path(path, k), "unknown key \"" + k + "\" (expected one of: " + list + ")");
      }
  }
  std::string string_at(const json& obj, const std::string& key, const std::string& path, bool required,
                        const std::string& def = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) fail(path, "expected a \"" + key + "\" key");
      return def;
    }
    if (!it->is_string() || it->get<std::string>().empty())
      fail(key_path(path, key), "expected a non-empty string, got " + kind_of(*it));
    return it->get<std::string>();
  }

  // params: fixed values; axes: non-empty arrays swept as a grid. Both checked against the specs.
  void check_params_and_axes(const json& entry, const std::string& path, const std::vector<ParamSpec>& specs,
                             const std::string& owner, json& params, json& axes) const {
    params = json::object();
    axes = json::object();
    if (auto it = entry.find("params"); it != entry.end()) {
      expect_object(*it, path + ".params");
      for (const auto& [k, v] : it->items()) check_value(specs, owner, k, v, key_path(path + ".params", k));
      params = *it;
    }
    if (auto it = entry.find("axes"); it != entry.end()) {
      expect_object(*it, path + ".axes");
      for (const auto& [k, v] : it->items()) {
        const std::string ap = key_path(path + ".axes", k);
        if (!v.is_array() || v.empty()) fail(ap, "expected a non-empty array of values, got " + kind_of(v));
        if (params.contains(k)) fail(ap, "\"" + k + "\" is given in both params and axes; keep one");
        std::set<std::string> seen;
        for (std::size_t i = 0; i < v.size(); ++i) {
          const std::string vp = ap + "[" + std::to_string(i) + "]";
          check_value(specs, owner, k, v[i], vp);
          if (!seen.insert(v[i].dump()).second) fail(vp, "value " + v[i].dump() + " listed twice in this axis");
        }
      }
      axes = *it;
    }
  }

 private:
  void check_value(const std::vector<ParamSpec>& specs, const std::string& owner, const std::string& key, const json& v,
                   const std::string& path) const {
    const ParamSpec* spec = find_spec(specs, key);
    if (!spec) {
      std::string list;
      for (const auto& s : specs) list += (list.empty() ? "" : ", ") + s.name;
      fail(path, owner + " has no parameter \"" + key + "\" (it has: " + (list.empty() ? "none" : list) + ")");
    }
    if (auto err = spec->check(v)) fail(path, "expected " + *err);
  }

  std::string file_;
};

// Every point of the grid spanned by `axes`, merged over `params`; the last axis varies fastest.
std::vector<json> grid(const json& params, const json& axes) {
  std::vector<json> points{params};
  for (const auto& [axis, values] : axes.items()) {
    std::vector<json> next;
    for (const auto& p : points)
      for (const auto& v : values) {
        json q = p;
        q[axis] = v;
        next.push_back(std::move(q));
      }
    points = std::move(next);
  }
  return points;
}

}  // namespace

Manifest parse_manifest(const std::string& text, const std::string& path) {
  Validator v(path);
  const json root = parse_strict(text, path);
  v.expect_object(root, "$");
  v.only_keys(root, "$",
              {"name", "description", "seed", "device", "baseline", "output", "timing", "scale", "methods", "tasks",
               "include"});

  Manifest m;
  m.path = path;
  m.text = text;
  m.name = v.string_at(root, "name", "$", true);
  if (root.contains("description") && !root["description"].is_string())
    v.fail("$.description", "expected a string, got " + kind_of(root["description"]));
  if (auto it = root.find("seed"); it != root.end()) {
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<std::int64_t>() >= 0))
      v.fail("$.seed", "expected a non-negative integer, got " + it->dump());
    m.seed = it->get<std::uint64_t>();
  }
  m.device = v.string_at(root, "device", "$", false, "cpu");
  if (m.device != "cpu" && m.device != "cuda" && m.device != "auto" && m.device.rfind("cuda:", 0) != 0)
    v.fail("$.device", "expected \"cpu\", \"cuda\", \"cuda:N\" or \"auto\", got " + json(m.device).dump());
  m.output = v.string_at(root, "output", "$", false);

  if (auto it = root.find("include"); it != root.end()) {
    if (!it->is_array() || it->empty())
      v.fail("$.include", "expected a non-empty array of manifest paths, got " + kind_of(*it));
    for (const char* own : {"methods", "tasks", "timing", "baseline", "seed"})
      if (root.contains(own))
        v.fail(std::string("$.") + own,
               std::string("no \"") + own + "\" beside \"include\": each included suite keeps its own");
    const std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::set<std::string> names;
    for (std::size_t i = 0; i < it->size(); ++i) {
      const std::string ip = "$.include[" + std::to_string(i) + "]";
      const json& e = (*it)[i];
      if (!e.is_string() || e.get<std::string>().empty()) v.fail(ip, "expected a manifest path, got " + kind_of(e));
      const std::string sub_path = (dir / e.get<std::string>()).string();
      Manifest sub;
      try {
        sub = load_manifest(sub_path);
      } catch (const ManifestError& err) {
        v.fail(ip, "a valid manifest, but " + std::string(err.what()));
      }
      if (!sub.includes.empty())
        v.fail(ip, "a manifest of methods and tasks, but " + sub_path + " includes others itself");
      if (!names.insert(sub.name).second)
        v.fail(ip, "suites with distinct names (their result files are named after them), but \"" + sub.name +
                       "\" appears twice");
      m.includes.push_back(sub_path);
    }
    return m;
  }

  if (auto it = root.find("timing"); it != root.end()) {
    const json& t = *it;
    v.expect_object(t, "$.timing");
    v.only_keys(t, "$.timing",
                {"warmup", "min_samples", "max_samples", "max_noise", "max_time_s", "cold_cache", "timeout_s",
                 "hang_s"});
    const std::vector<ParamSpec> specs{ParamSpec::integer("warmup", 2, 0, 10000, ""),
                                       ParamSpec::integer("min_samples", 5, 1, 1000000, ""),
                                       ParamSpec::integer("max_samples", 1000, 1, 10000000, ""),
                                       ParamSpec::number("max_noise", 0.02, 1e-6, 1.0, ""),
                                       ParamSpec::number("max_time_s", 2.0, 0.0, 86400.0, ""),
                                       ParamSpec::boolean("cold_cache", false, ""),
                                       ParamSpec::number("timeout_s", 120.0, 0.001, 864000.0, ""),
                                       ParamSpec::number("hang_s", 300.0, 0.01, 1728000.0, "")};
    for (const auto& [k, val] : t.items())
      if (auto err = find_spec(specs, k)->check(val)) v.fail("$.timing." + k, "expected " + *err);
    const Params tp = complete_params(specs, t);
    m.timing.warmup = static_cast<int>(tp.integer("warmup"));
    m.timing.min_samples = static_cast<int>(tp.integer("min_samples"));
    m.timing.max_samples = static_cast<int>(tp.integer("max_samples"));
    m.timing.max_noise = tp.number("max_noise");
    m.timing.max_noise_given = t.contains("max_noise");
    m.timing.max_time_s = tp.number("max_time_s");
    m.timing.cold_cache = tp.boolean("cold_cache");
    m.timing.timeout_s = tp.number("timeout_s");
    m.timing.hang_s = t.contains("hang_s") ? tp.number("hang_s") : 2 * m.timing.timeout_s + 60;
    if (m.timing.hang_s <= m.timing.timeout_s)
      v.fail("$.timing.hang_s", "expected a limit above timeout_s (" + json(m.timing.timeout_s).dump() +
                                    "): the watchdog is for cells that never return, timeout_s for slow ones");
    if (m.timing.max_samples < m.timing.min_samples)
      v.fail("$.timing.max_samples",
             "expected max_samples >= min_samples (" + std::to_string(m.timing.min_samples) + ")");
  }

  auto list_at = [&](const char* key) -> const json& {
    auto it = root.find(key);
    if (it == root.end()) v.fail("$", std::string("expected a \"") + key + "\" key");
    if (!it->is_array() || it->empty())
      v.fail(std::string("$.") + key, "expected a non-empty array, got " + kind_of(*it));
    return *it;
  };

  std::map<std::string, std::string> labels;
  const json& methods = list_at("methods");
  for (std::size_t i = 0; i < methods.size(); ++i) {
    const std::string p = "$.methods[" + std::to_string(i) + "]";
    const json& e = methods[i];
    v.expect_object(e, p);
    v.only_keys(e, p, {"name", "label", "params", "axes"});
    MethodEntry me;
    me.name = v.string_at(e, "name", p, true);
    const Method* method = MethodRegistry::instance().find(me.name);
    if (!method) {
      std::string known;
      for (const auto& n : MethodRegistry::instance().names()) known += (known.empty() ? "" : ", ") + n;
      v.fail(p + ".name", "unknown method \"" + me.name + "\" (registered: " + known + ")");
    }
    me.label = v.string_at(e, "label", p, false, me.name);
    if (auto [it, fresh] = labels.emplace(me.label, p); !fresh)
      v.fail(p, "duplicate method label \"" + me.label + "\" (also at " + it->second +
                    "); give one of them a distinct \"label\"");
    v.check_params_and_axes(e, p, method->info().params, "method " + me.name, me.params, me.axes);
    m.methods.push_back(std::move(me));
  }

  std::set<std::string> task_keys;
  // "scale": {"seq_len": 8} multiplies every value of the named integer task parameters, so that one
  // suite sized for two CPU cores runs bigger on a GPU by changing one number.
  json scale = json::object();
  if (auto it = root.find("scale"); it != root.end()) {
    v.expect_object(*it, "$.scale");
    for (const auto& [k, f] : it->items())
      if (!f.is_number() || f.get<double>() <= 0 || f.get<double>() > 1e6)
        v.fail(key_path("$.scale", k), "expected a positive factor, got " + f.dump());
    scale = *it;
  }
  auto scaled = [&](json e, const std::vector<ParamSpec>& specs) {
    for (const auto& [k, f] : scale.items()) {
      const ParamSpec* spec = find_spec(specs, k);
      if (!spec || spec->type != ParamType::integer) continue;
      auto times = [&](json& x) {
        if (x.is_number_integer() && x.get<std::int64_t>() > 0)
          x = std::max<std::int64_t>(1, std::llround(static_cast<double>(x.get<std::int64_t>()) * f.get<double>()));
      };
      if (e.contains("params") && e["params"].is_object() && e["params"].contains(k)) times(e["params"][k]);
      if (e.contains("axes") && e["axes"].is_object() && e["axes"].contains(k) && e["axes"][k].is_array())
        for (auto& x : e["axes"][k]) times(x);
    }
    return e;
  };

  const json& tasks = list_at("tasks");
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::string p = "$.tasks[" + std::to_string(i) + "]";
    json e_scaled;  // the entry with "scale" applied, validated as if written so
    if (const Task* t = tasks[i].is_object() && tasks[i].contains("name") && tasks[i]["name"].is_string()
                            ? TaskRegistry::instance().find(tasks[i]["name"].get<std::string>())
                            : nullptr)
      e_scaled = scaled(tasks[i], t->info().params);
    else
      e_scaled = tasks[i];
    const json& e = e_scaled;
    v.expect_object(e, p);
    v.only_keys(e, p, {"name", "params", "axes"});
    TaskEntry te;
    te.name = v.string_at(e, "name", p, true);
    const Task* task = TaskRegistry::instance().find(te.name);
    if (!task) {
      std::string known;
      for (const auto& n : TaskRegistry::instance().names()) known += (known.empty() ? "" : ", ") + n;
      v.fail(p + ".name", "unknown task \"" + te.name + "\" (registered: " + known + ")");
    }
    const auto specs = task->info().params;
    v.check_params_and_axes(e, p, specs, "task " + te.name, te.params, te.axes);
    for (const auto& point : grid(te.params, te.axes)) {
      const Params full = complete_params(specs, point);
      if (auto err = task->check(full)) v.fail(p, "a consistent shape, but at " + point.dump() + ": " + *err);
      if (!task_keys.insert(te.name + full.canonical()).second)
        v.fail(p, "distinct task instances, but " + te.name + " " + point.dump() + " appears twice in the manifest");
    }
    m.tasks.push_back(std::move(te));
  }

  if (auto it = root.find("baseline"); it != root.end()) {
    m.baseline = v.string_at(root, "baseline", "$", false);
    if (!labels.count(m.baseline)) {
      std::string known;
      for (const auto& [l, _] : labels) known += (known.empty() ? "" : ", ") + l;
      v.fail("$.baseline", "the label of a method in $.methods (" + known + "), got \"" + m.baseline + "\"");
    }
  }
  return m;
}

Manifest load_manifest(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ManifestError(path, "$", "a readable manifest file, but it cannot be opened");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_manifest(ss.str(), path);
}

std::vector<Cell> expand(const Manifest& m) {
  std::vector<Cell> cells;
  std::int64_t instance = 0;
  for (const auto& te : m.tasks) {
    const Task* task = TaskRegistry::instance().find(te.name);
    const auto tspecs = task->info().params;
    for (const auto& tpoint : grid(te.params, te.axes)) {
      const Params tparams = complete_params(tspecs, tpoint);
      const std::uint64_t seed = derive_seed(m.seed, te.name + tparams.canonical());
      for (const auto& me : m.methods) {
        const Method* method = MethodRegistry::instance().find(me.name);
        const auto mspecs = method->info().params;
        for (const auto& mpoint : grid(me.params, me.axes)) {
          Cell c;
          c.index = static_cast<std::int64_t>(cells.size());
          c.instance = instance;
          c.method_label = me.label;
          c.method_name = me.name;
          c.task_name = te.name;
          c.method_params = complete_params(mspecs, mpoint);
          c.task_params = tparams;
          c.seed = seed;
          c.id = me.label + c.method_params.canonical() + "|" + te.name + tparams.canonical();
          cells.push_back(std::move(c));
        }
      }
      ++instance;
    }
  }
  return cells;
}

}  // namespace attnbench
