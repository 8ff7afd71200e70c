// Parameter specs: construction, validation messages, and completed value sets.
#include "attnbench/params.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace attnbench {

namespace {
std::string fmt_number(double v) {
  char buf[64];
  // Whole numbers in full (an integer range of [0, 1099511627776] reads better than 1.099511628e+12).
  if (v == std::floor(v) && std::abs(v) < 1e18)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}
std::string type_name(const json& v) {
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}
}  // namespace

ParamSpec ParamSpec::integer(std::string name, std::int64_t def, std::int64_t lo, std::int64_t hi, std::string doc) {
  ParamSpec s{std::move(name), ParamType::integer, def, static_cast<double>(lo), static_cast<double>(hi), {},
              std::move(doc)};
  return s;
}
ParamSpec ParamSpec::number(std::string name, double def, double lo, double hi, std::string doc) {
  return ParamSpec{std::move(name), ParamType::number, def, lo, hi, {}, std::move(doc)};
}
ParamSpec ParamSpec::boolean(std::string name, bool def, std::string doc) {
  return ParamSpec{std::move(name), ParamType::boolean, def, std::nullopt, std::nullopt, {}, std::move(doc)};
}
ParamSpec ParamSpec::choice(std::string name, std::string def, std::vector<std::string> choices, std::string doc) {
  return ParamSpec{std::move(name), ParamType::string,  def,           std::nullopt,
                   std::nullopt,    std::move(choices), std::move(doc)};
}

std::string ParamSpec::expected() const {
  std::string range;
  if (min || max)
    range = " in [" + (min ? fmt_number(*min) : std::string("-inf")) + ", " +
            (max ? fmt_number(*max) : std::string("inf")) + "]";
  switch (type) {
    case ParamType::integer:
      return "integer" + range;
    case ParamType::number:
      return "number" + range;
    case ParamType::boolean:
      return "true or false";
    case ParamType::string: {
      if (choices.empty()) return "string";
      std::string s = "one of";
      for (std::size_t i = 0; i < choices.size(); ++i) s += (i ? ", \"" : " \"") + choices[i] + "\"";
      return s;
    }
  }
  return "?";
}

std::optional<std::string> ParamSpec::check(const json& v) const {
  auto bad = [&](const std::string& found) { return expected() + ", got " + found; };
  switch (type) {
    case ParamType::integer: {
      if (!v.is_number_integer() && !v.is_number_unsigned()) return bad(type_name(v) + " " + v.dump());
      const double d = v.get<double>();
      if ((min && d < *min) || (max && d > *max)) return bad(v.dump());
      return std::nullopt;
    }
    case ParamType::number: {
      if (!v.is_number()) return bad(type_name(v) + " " + v.dump());
      const double d = v.get<double>();
      if (!std::isfinite(d) || (min && d < *min) || (max && d > *max)) return bad(v.dump());
      return std::nullopt;
    }
    case ParamType::boolean:
      if (!v.is_boolean()) return bad(type_name(v) + " " + v.dump());
      return std::nullopt;
    case ParamType::string: {
      if (!v.is_string()) return bad(type_name(v) + " " + v.dump());
      if (choices.empty()) return std::nullopt;
      for (const auto& c : choices)
        if (v.get<std::string>() == c) return std::nullopt;
      return bad(v.dump());
    }
  }
  return std::nullopt;
}

std::string ParamSpec::describe() const {
  std::string s = name + ": " + expected() + ", default " + default_value.dump();
  if (!doc.empty()) s += " — " + doc;
  return s;
}

const json& Params::at(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw std::out_of_range("no parameter '" + name + "'");
  return *it;
}
std::int64_t Params::integer(const std::string& name) const { return at(name).get<std::int64_t>(); }
double Params::number(const std::string& name) const { return at(name).get<double>(); }
bool Params::boolean(const std::string& name) const { return at(name).get<bool>(); }
std::string Params::string(const std::string& name) const { return at(name).get<std::string>(); }

Params complete_params(const std::vector<ParamSpec>& specs, const json& given) {
  json out = json::object();
  for (const auto& s : specs) {
    auto it = given.find(s.name);
    json v = it != given.end() ? *it : s.default_value;
    // Numbers given as integers are stored as doubles, so the canonical text is one per value.
    if (s.type == ParamType::number) v = v.get<double>();
    out[s.name] = v;
  }
  return Params(std::move(out));
}

const ParamSpec* find_spec(const std::vector<ParamSpec>& specs, const std::string& name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace attnbench
