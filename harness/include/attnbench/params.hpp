// Declared parameters of methods, tasks and masks: type, default, range, one-line doc; and their values.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace attnbench {

using json = nlohmann::ordered_json;

enum class ParamType { integer, number, boolean, string };

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::integer;
  json default_value;                // must itself satisfy the spec
  std::optional<double> min, max;    // inclusive bounds, integer and number only
  std::vector<std::string> choices;  // allowed values, string only (empty: any string)
  std::string doc;

  static ParamSpec integer(std::string name, std::int64_t def, std::int64_t lo, std::int64_t hi, std::string doc);
  static ParamSpec number(std::string name, double def, double lo, double hi, std::string doc);
  static ParamSpec boolean(std::string name, bool def, std::string doc);
  static ParamSpec choice(std::string name, std::string def, std::vector<std::string> choices, std::string doc);

  // What a valid value looks like, e.g. "integer in [16, 1024]"; used in every error message.
  std::string expected() const;
  // Empty when the value is valid; otherwise expected() plus what was found.
  std::optional<std::string> check(const json& value) const;
  // "block_k: integer, default 64, range [16, 1024] — keys per tile"
  std::string describe() const;
};

// Values for a set of specs, always complete (defaults filled in) and in declaration order.
class Params {
 public:
  Params() = default;
  explicit Params(json values) : values_(std::move(values)) {}

  std::int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool boolean(const std::string& name) const;
  std::string string(const std::string& name) const;
  bool has(const std::string& name) const { return values_.contains(name); }
  const json& values() const { return values_; }
  // Canonical text, the same for equal parameter sets: used in cell ids and seeds.
  std::string canonical() const { return values_.dump(); }

 private:
  const json& at(const std::string& name) const;
  json values_ = json::object();
};

// Fills defaults for the specs that `given` leaves out; assumes `given` was validated.
Params complete_params(const std::vector<ParamSpec>& specs, const json& given);
const ParamSpec* find_spec(const std::vector<ParamSpec>& specs, const std::string& name);

}  // namespace attnbench
