// Tables from result files: one table model, printed as Markdown, LaTeX or CSV (columns in docs/report.md).
#include "attnbench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>

#include "attnbench/measure.hpp"
#include "attnbench/merge.hpp"

namespace attnbench {

ReportFormat parse_report_format(const std::string& s) {
  if (s == "md" || s == "markdown") return ReportFormat::markdown;
  if (s == "latex" || s == "tex") return ReportFormat::latex;
  if (s == "csv") return ReportFormat::csv;
  throw std::invalid_argument("unknown report format '" + s + "' (expected md, latex or csv)");
}

namespace {

using namespace report_detail;

constexpr const char* kMissing = "—";
constexpr std::size_t kReasonWidth = 60;  // characters of a reason shown in md and LaTeX

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Metric values span from 1e-7 (fidelity) to 1 (accuracy): small or huge ones in scientific notation.
std::string metric_text(double v) {
  if (std::isnan(v)) return "nan";
  if (v == 0) return "0";
  const double a = std::fabs(v);
  return (a < 1e-2 || a >= 1e6) ? format("%.2e", v) : format("%.4g", v);
}

std::string full_precision(double v) { return format("%.9g", v); }

// Characters, not bytes: UTF-8 continuation bytes do not start a character.
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s)
    if ((ch & 0xC0) != 0x80) ++n;
  return n;
}

std::string truncate(const std::string& s, std::size_t width) {
  if (display_width(s) <= width) return s;
  std::size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == width - 1) break;
      ++chars;
    }
  }
  return s.substr(0, i) + "…";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\';
        out += ch;
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      default:
        out += ch;
    }
  }
  out = replace_all(out, "—", "---");
  out = replace_all(out, "×", "$\\times$");
  out = replace_all(out, "±", "$\\pm$");
  out = replace_all(out, "…", "\\ldots{}");
  return out;
}

std::string markdown_escape(const std::string& s) { return replace_all(s, "|", "\\|"); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string quoted = "\"";
  quoted += replace_all(s, "\"", "\"\"");
  quoted += '"';
  return quoted;
}

// --- the table model ----------------------------------------------------------------------------------

// Which value of a column is best, for the bold in LaTeX (docs/report.md, "Best in bold").
enum class Better { none, lower, higher };

struct Column {
  std::string header;                    // Markdown; LaTeX escapes it
  std::vector<std::string> csv_headers;  // one or more CSV columns
  bool numeric = false;                  // right-aligned
  Better better = Better::none;
};

struct Entry {
  std::string md, latex;         // latex already escaped
  std::vector<std::string> csv;  // one field per CSV header of its column
  std::optional<double> value;   // what "best" compares; nothing for text and missing numbers
};

struct Table {
  std::string caption;
  std::vector<Column> columns;
  std::vector<std::vector<Entry>> rows;
  // Rows compete for the bold only within their group (one task instance of the summary); empty = one group.
  std::vector<std::size_t> group;
};

Column text_column(const std::string& header) { return Column{header, {header}, false, Better::none}; }
Column number_column(const std::string& header, std::vector<std::string> csv_headers, Better better) {
  return Column{header, std::move(csv_headers), true, better};
}

Entry text_entry(const std::string& s, std::size_t width = 0) {
  // A line break would end a table row in Markdown and LaTeX alike.
  std::string shown = replace_all(replace_all(s, "\r\n", " "), "\n", " ");
  if (width) shown = truncate(shown, width);
  return Entry{markdown_escape(shown), latex_escape(shown), {s}, std::nullopt};
}

Entry missing_entry(std::size_t csv_fields = 1) {
  return Entry{kMissing, "---", std::vector<std::string>(csv_fields, ""), std::nullopt};
}

// `shown` for md and LaTeX, `exact` for CSV and for finding the best.
Entry number_entry(const std::string& shown, double exact) {
  return Entry{shown, latex_escape(shown), {full_precision(exact)}, exact};
}

// A non-ok cell in a column of numbers: its status in md and LaTeX, empty CSV fields.
Entry status_entry(const std::string& status, std::size_t csv_fields = 1) {
  return Entry{status, latex_escape(status), std::vector<std::string>(csv_fields, ""), std::nullopt};
}

std::string render_markdown(const Table& t) {
  std::vector<std::size_t> width(t.columns.size(), 3);
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    width[c] = std::max(width[c], display_width(markdown_escape(t.columns[c].header)));
    for (const auto& row : t.rows) width[c] = std::max(width[c], display_width(row[c].md));
  }
  auto pad = [](const std::string& s, std::size_t w, bool right) {
    const std::string fill(w - display_width(s), ' ');
    return right ? fill + s : s + fill;
  };
  std::string out = t.caption;
  auto line = [&](const std::vector<std::string>& cells) {
    out += "\n|";
    for (const std::string& cell : cells) {
      out += ' ';
      out += cell;
      out += " |";
    }
  };
  std::vector<std::string> cells;
  for (std::size_t c = 0; c < t.columns.size(); ++c)
    cells.push_back(pad(markdown_escape(t.columns[c].header), width[c], false));
  out += '\n';
  line(cells);
  cells.clear();
  for (std::size_t c = 0; c < t.columns.size(); ++c)
    cells.push_back(t.columns[c].numeric ? std::string(width[c] - 1, '-') + ':' : std::string(width[c], '-'));
  line(cells);
  for (const auto& row : t.rows) {
    cells.clear();
    for (std::size_t c = 0; c < t.columns.size(); ++c) cells.push_back(pad(row[c].md, width[c], t.columns[c].numeric));
    line(cells);
  }
  out += '\n';
  return out;
}

// The best entries of each column with a direction, per group: all that tie with the best value. A group
// with fewer than two values, or whose values are all equal, has no best: nothing won, nothing to mark.
std::vector<std::vector<bool>> best_entries(const Table& t) {
  std::vector<std::vector<bool>> bold(t.rows.size(), std::vector<bool>(t.columns.size(), false));
  auto group_of = [&t](std::size_t r) { return t.group.empty() ? std::size_t{0} : t.group[r]; };
  std::set<std::size_t> groups;
  for (std::size_t r = 0; r < t.rows.size(); ++r) groups.insert(group_of(r));
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    const Better better = t.columns[c].better;
    if (better == Better::none) continue;
    for (const std::size_t g : groups) {
      std::optional<double> best, worst;
      for (std::size_t r = 0; r < t.rows.size(); ++r) {
        const std::optional<double>& v = t.rows[r][c].value;
        if (group_of(r) != g || !v || std::isnan(*v)) continue;
        if (!best || (better == Better::lower ? *v < *best : *v > *best)) best = *v;
        if (!worst || (better == Better::lower ? *v > *worst : *v < *worst)) worst = *v;
      }
      if (!best || *best == *worst) continue;
      for (std::size_t r = 0; r < t.rows.size(); ++r)
        if (group_of(r) == g && t.rows[r][c].value && *t.rows[r][c].value == *best) bold[r][c] = true;
    }
  }
  return bold;
}

std::string render_latex(const Table& t) {
  const std::vector<std::vector<bool>> bold = best_entries(t);
  std::string spec;
  for (const Column& c : t.columns) spec += c.numeric ? 'r' : 'l';
  std::string out = "\\begin{table}\n\\centering\n\\caption{" + latex_escape(t.caption) + "}\n\\begin{tabular}{" +
                    spec + "}\n\\toprule\n";
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) out += (c ? " & " : "") + cells[c];
    out += " \\\\\n";
  };
  std::vector<std::string> headers;
  for (const Column& c : t.columns) headers.push_back(latex_escape(c.header));
  line(headers);
  out += "\\midrule\n";
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    std::vector<std::string> cells;
    for (std::size_t c = 0; c < t.rows[r].size(); ++c)
      cells.push_back(bold[r][c] ? "\\textbf{" + t.rows[r][c].latex + "}" : t.rows[r][c].latex);
    line(cells);
  }
  out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return out;
}

std::string render_csv(const Table& t) {
  std::string out;
  auto line = [&](const std::vector<std::string>& fields) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (i) out += ',';
      out += csv_field(fields[i]);
    }
    out += "\n";
  };
  std::vector<std::string> headers;
  for (const Column& c : t.columns) headers.insert(headers.end(), c.csv_headers.begin(), c.csv_headers.end());
  line(headers);
  for (const auto& row : t.rows) {
    std::vector<std::string> fields;
    for (const Entry& e : row) fields.insert(fields.end(), e.csv.begin(), e.csv.end());
    line(fields);
  }
  return out;
}

std::string render(const Table& t, ReportFormat f) {
  switch (f) {
    case ReportFormat::markdown:
      return render_markdown(t);
    case ReportFormat::latex:
      return render_latex(t);
    case ReportFormat::csv:
      return render_csv(t);
  }
  return "";
}

// --- from cells to rows -------------------------------------------------------------------------------

struct Row {
  const ResultsFile* file;
  const CellRecord* cell;
  std::string method;  // label, plus the parameters that tell the label's configurations apart
  std::string shape;   // "L1024 D64 H8/8 fp32 causal"
  const CellRecord* baseline = nullptr;
};

json parse_or_null(const std::string& text) { return json::parse(text, nullptr, false); }

}  // namespace

namespace report_detail {

// B and Dv only when they are not the usual.
std::string shape_text(const CellRecord& c) {
  std::string s;
  // Appends only: GCC 12 warns falsely (-Wrestrict, bug 105651) on "literal" + std::string when inlined.
  auto add = [&s](const char* prefix, std::int64_t n) {
    s += prefix;
    s += std::to_string(n);
  };
  if (c.batch != 1) {
    add("B", c.batch);
    s += ' ';
  }
  add("L", c.q_len);
  if (c.kv_len != c.q_len) add("×", c.kv_len);
  add(" D", c.head_dim);
  if (c.value_dim != c.head_dim) add(" Dv", c.value_dim);
  add(" H", c.heads);
  add("/", c.kv_heads);
  if (!c.dtype.empty()) {
    s += ' ';
    s += c.dtype;
  }
  if (!c.mask.empty() && c.mask != "full" && c.mask != "causal") {
    s += ' ';
    s += c.mask;
  } else if (c.causal) {
    s += " causal";
  }
  return s;
}

std::string pattern_text(std::string shape) {
  // "L1024 D64 H8/8 fp32 causal" -> "D64 H8/8 fp32 causal" (and "B2 L1×4096 ..." -> "B2 ...").
  const auto at = shape.find('L');
  if (at != std::string::npos) {
    const auto end = shape.find(' ', at);
    shape.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
  }
  return shape;
}

std::string params_without(const std::string& task_params, const std::vector<std::string>& keys) {
  json p = parse_or_null(task_params);
  if (!p.is_object()) return task_params;
  for (const std::string& k : keys) p.erase(k);
  return p.dump();
}

std::int64_t cell_length(const CellRecord& c) {
  const json p = parse_or_null(c.task_params);
  if (p.is_object() && p.contains("seq_len") && p["seq_len"].is_number_integer())
    return p["seq_len"].get<std::int64_t>();
  return std::max(c.q_len, c.kv_len);
}

std::string length_text(std::int64_t n) {
  constexpr std::int64_t K = 1024, M = 1024 * 1024;
  if (n >= M && n % M == 0) return std::to_string(n / M) + "M";
  if (n >= K && n % K == 0) return std::to_string(n / K) + "K";
  return std::to_string(n);
}

}  // namespace report_detail

namespace {

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

namespace report_detail {

// Within one file: a label run with several parameter sets shows the parameters that differ.
std::map<const CellRecord*, std::string> method_names(const ResultsFile& f) {
  std::map<std::string, std::vector<const CellRecord*>> by_label;
  for (const CellRecord& c : f.cells) by_label[c.method].push_back(&c);
  std::map<const CellRecord*, std::string> names;
  for (const auto& [label, cells] : by_label) {
    std::set<std::string> configs;
    for (const CellRecord* c : cells) configs.insert(c->method_params);
    if (configs.size() <= 1) {
      for (const CellRecord* c : cells) names[c] = label;
      continue;
    }
    std::vector<json> params;
    std::vector<std::string> keys;  // in the order of the first configuration that has them
    for (const CellRecord* c : cells) {
      params.push_back(parse_or_null(c->method_params));
      if (!params.back().is_object()) continue;
      for (const auto& item : params.back().items())
        if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) keys.push_back(item.key());
    }
    std::vector<std::string> varying;
    for (const std::string& k : keys) {
      std::set<std::string> values;
      for (const json& p : params) values.insert(p.is_object() && p.contains(k) ? p[k].dump() : "");
      if (values.size() > 1) varying.push_back(k);
    }
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string name = label;
      if (varying.empty()) {
        name += " " + cells[i]->method_params;
      } else {
        for (const std::string& k : varying)
          if (params[i].is_object() && params[i].contains(k)) name += " " + k + "=" + value_text(params[i][k]);
      }
      names[cells[i]] = name;
    }
  }
  return names;
}

bool several_runs(const std::vector<ResultsFile>& files) {
  for (const ResultsFile& f : files)
    if (f.manifest_name != files.front().manifest_name) return true;
  return false;
}

// Columns whose headers collide are told apart by the task parameters whose values differ among the
// colliding columns, as "name=value" (the parameters are JSON objects in key_params[i].second).
void disambiguate(std::vector<std::string>& headers,
                  const std::vector<std::pair<std::string, std::string>>& key_params) {
  const std::vector<std::string> original = headers;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    std::vector<json> same;  // the parameters of every column that shares this header
    for (std::size_t j = 0; j < original.size(); ++j)
      if (original[j] == original[i]) same.push_back(parse_or_null(key_params[j].second));
    if (same.size() < 2) continue;
    const json mine = parse_or_null(key_params[i].second);
    std::string suffix;
    if (mine.is_object())
      for (const auto& item : mine.items()) {
        bool varies = false;
        for (const json& other : same)
          varies |= !other.is_object() || !other.contains(item.key()) || other[item.key()] != item.value();
        if (varies) suffix += " " + item.key() + "=" + value_text(item.value());
      }
    headers[i] += suffix.empty() ? " " + key_params[i].second : suffix;
  }
}

}  // namespace report_detail

namespace {

std::string baseline_label(const ResultsFile& f) {
  const json m = parse_or_null(f.manifest_text);
  if (m.is_object() && m.contains("baseline") && m["baseline"].is_string()) return m["baseline"].get<std::string>();
  return "";
}

bool ok(const CellRecord& c) { return c.status == "ok"; }
bool has_latency(const CellRecord& c) { return ok(c) && c.timing.median_s > 0; }

// Rows in index order per file, each with its baseline: the first ok cell of the baseline label with the
// same task and task parameters, in the same file (the manifest's baseline) or, with `over` given, in any
// of the files in the order given.
// A file's cells in index order (a resumed run appends, so the file's order may differ).
std::vector<const CellRecord*> sorted_cells(const ResultsFile& f) {
  std::vector<const CellRecord*> cells;
  for (const CellRecord& c : f.cells) cells.push_back(&c);
  std::stable_sort(cells.begin(), cells.end(),
                   [](const CellRecord* a, const CellRecord* b) { return a->index < b->index; });
  return cells;
}

std::vector<Row> collect_rows(const std::vector<ResultsFile>& files, const std::string& over, bool* any_baseline) {
  using Key = std::pair<std::string, std::string>;
  std::map<Key, const CellRecord*> across;  // --baseline: over every file
  if (!over.empty()) {
    std::set<std::string> labels;
    for (const ResultsFile& f : files)
      for (const CellRecord* c : sorted_cells(f)) {
        labels.insert(c->method);
        if (c->method == over && has_latency(*c)) across.emplace(Key{c->task, c->task_params}, c);
      }
    if (across.empty()) {
      std::string known;
      for (const auto& l : labels) known += (known.empty() ? "" : ", ") + l;
      throw std::invalid_argument("--baseline " + over +
                                  ": no ok cell of that method label in the files (labels: " + known + ")");
    }
  }
  std::vector<Row> rows;
  *any_baseline = !over.empty();
  for (const ResultsFile& f : files) {
    const auto names = method_names(f);
    const std::string baseline = over.empty() ? baseline_label(f) : over;
    if (!baseline.empty()) *any_baseline = true;
    std::map<Key, const CellRecord*> within;
    const std::vector<const CellRecord*> cells = sorted_cells(f);
    if (over.empty())
      for (const CellRecord* c : cells)
        if (!baseline.empty() && c->method == baseline && has_latency(*c))
          within.emplace(Key{c->task, c->task_params}, c);
    const auto& baseline_of = over.empty() ? within : across;
    for (const CellRecord* c : cells) {
      const auto b = baseline_of.find({c->task, c->task_params});
      rows.push_back(Row{&f, c, names.at(c), shape_text(*c), b == baseline_of.end() ? nullptr : b->second});
    }
  }
  return rows;
}

std::string caption(const std::vector<ResultsFile>& files, const std::vector<Row>& rows) {
  std::size_t n_ok = 0, n_failed = 0, n_unsupported = 0;
  for (const Row& r : rows) {
    if (r.cell->status == "ok")
      ++n_ok;
    else if (r.cell->status == "unsupported")
      ++n_unsupported;
    else
      ++n_failed;
  }
  return "attnbench report — " + std::to_string(rows.size()) + " cells from " + std::to_string(files.size()) +
         " file(s): " + std::to_string(n_ok) + " ok, " + std::to_string(n_failed) + " failed, " +
         std::to_string(n_unsupported) + " unsupported";
}

std::vector<std::string> metric_names(const std::vector<Row>& rows) {
  std::vector<std::string> names;
  for (const Row& r : rows)
    for (const auto& m : r.cell->metrics)
      if (std::find(names.begin(), names.end(), m.first) == names.end()) names.push_back(m.first);
  return names;
}

const double* find_metric(const CellRecord& c, const std::string& name) {
  for (const auto& m : c.metrics)
    if (m.first == name) return &m.second;
  return nullptr;
}

// The figures the report derives, each in one place.
double latency_ms(const CellRecord& c) { return c.timing.median_s * 1e3; }
double gflops(const CellRecord& c) { return c.flops / c.timing.median_s / 1e9; }
double peak_mb(const CellRecord& c) { return static_cast<double>(c.peak_bytes) / 1e6; }
double speedup(const Row& r) { return r.baseline->timing.median_s / r.cell->timing.median_s; }

bool has_speedup(const Row& r) { return r.baseline && has_latency(*r.cell); }

// The q-quantile of sorted samples, interpolating linearly between order statistics (Hyndman and Fan's
// type 7, numpy's default): the same number a reader gets from the samples in the result file.
double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(at));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (at - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

// The spread of a latency: the interquartile range of the timing samples (robust to the slow outliers
// every timing has, and a partner of the median). Nothing with fewer than two samples recorded.
std::optional<std::pair<double, double>> latency_quartiles_ms(const CellRecord& c) {
  if (c.samples.size() < 2) return std::nullopt;
  std::vector<double> sorted = c.samples;
  std::sort(sorted.begin(), sorted.end());
  return std::make_pair(quantile(sorted, 0.25) * 1e3, quantile(sorted, 0.75) * 1e3);
}

// "median ± half the IQR" in md and LaTeX; the median and both quartiles in CSV.
Entry latency_entry(const CellRecord& c) {
  if (!has_latency(c)) return missing_entry(3);
  const double med = latency_ms(c);
  const std::string m = format("%.4g", med);
  const auto quartiles = latency_quartiles_ms(c);
  if (!quartiles) return Entry{m, m, {full_precision(med), "", ""}, med};
  const std::string h = format("%.2g", (quartiles->second - quartiles->first) / 2);
  return Entry{m + " ± " + h,
               m + " $\\pm$ " + h,
               {full_precision(med), full_precision(quartiles->first), full_precision(quartiles->second)},
               med};
}

// Lower is better for errors, higher for accuracy; a metric named otherwise (intervals, counts) has no best.
Better metric_better(const std::string& name) {
  auto ends_with = [&name](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (name == "rel_l2" || name == "max_abs" || name == "mse" || name == "rmse" || name == "error" ||
      ends_with("_error") || ends_with("_err"))
    return Better::lower;
  if (name == "imbalance" || name == "comm_bytes_per_rank" || name == "comm_s") return Better::lower;
  if (name == "accuracy" || ends_with("_accuracy") || name == "recall" || name == "precision" || name == "f1")
    return Better::higher;
  return Better::none;
}

Table summary_table(const std::vector<ResultsFile>& files, const std::vector<Row>& rows, bool any_baseline) {
  const bool with_run = several_runs(files);
  const std::vector<std::string> metrics = metric_names(rows);
  bool any_reason = false;
  for (const Row& r : rows) any_reason = any_reason || !r.cell->reason.empty();

  Table t;
  t.caption = caption(files, rows);
  if (with_run) t.columns.push_back(text_column("run"));
  t.columns.push_back(text_column("method"));
  t.columns.push_back(text_column("task"));
  t.columns.push_back(text_column("shape"));
  t.columns.push_back(text_column("status"));
  t.columns.push_back(number_column("latency (ms)", {"latency_ms", "latency_q1_ms", "latency_q3_ms"}, Better::lower));
  t.columns.push_back(number_column("GFLOP/s", {"gflops"}, Better::higher));
  t.columns.push_back(number_column("peak (MB)", {"peak_mb"}, Better::lower));
  if (any_baseline) t.columns.push_back(number_column("speedup (×)", {"speedup"}, Better::higher));
  for (const std::string& m : metrics) t.columns.push_back(number_column(m, {m}, metric_better(m)));
  if (any_reason) t.columns.push_back(text_column("reason"));

  // Rows compete for the bold within one task instance of one file: the same problem, solved by each method.
  std::vector<std::tuple<const ResultsFile*, std::string, std::string>> instances;
  for (const Row& r : rows) {
    const std::tuple<const ResultsFile*, std::string, std::string> key{r.file, r.cell->task, r.cell->task_params};
    auto at = std::find(instances.begin(), instances.end(), key);
    if (at == instances.end()) at = instances.insert(instances.end(), key);
    t.group.push_back(static_cast<std::size_t>(at - instances.begin()));
  }

  for (const Row& r : rows) {
    const CellRecord& c = *r.cell;
    std::vector<Entry> e;
    if (with_run) e.push_back(text_entry(r.file->manifest_name));
    e.push_back(text_entry(r.method));
    e.push_back(text_entry(c.task));
    e.push_back(text_entry(r.shape));
    e.push_back(text_entry(c.status));
    e.push_back(latency_entry(c));
    e.push_back(has_latency(c) && c.flops > 0 ? number_entry(format("%.4g", gflops(c)), gflops(c)) : missing_entry());
    e.push_back(ok(c) && c.peak_bytes > 0 ? number_entry(format("%.4g", peak_mb(c)), peak_mb(c)) : missing_entry());
    if (any_baseline)
      e.push_back(has_speedup(r) ? number_entry(format("%.2f", speedup(r)), speedup(r)) : missing_entry());
    for (const std::string& m : metrics) {
      const double* v = ok(c) ? find_metric(c, m) : nullptr;
      e.push_back(v ? number_entry(metric_text(*v), *v) : missing_entry());
    }
    if (any_reason) {
      e.push_back(text_entry(c.reason, kReasonWidth));  // CSV keeps it whole
    }
    t.rows.push_back(std::move(e));
  }
  return t;
}

// FLOPs of the model's exact attention for the cell's problem: every query head the model has (the task
// parameter model_heads, for Sparse Query Attention; else heads), every key, halved for causal: the same
// formula as attention_flops in problem.hpp.
double model_flops(const CellRecord& c) {
  const json tp = parse_or_null(c.task_params);
  std::int64_t heads = c.heads;
  if (tp.is_object() && tp.contains("model_heads") && tp["model_heads"].is_number_integer() &&
      tp["model_heads"].get<std::int64_t>() > 0)
    heads = tp["model_heads"].get<std::int64_t>();
  const double full = 2.0 * static_cast<double>(c.batch * heads) * static_cast<double>(c.q_len) *
                      static_cast<double>(c.kv_len) * static_cast<double>(c.head_dim + c.value_dim);
  return c.causal ? full / 2 : full;
}

struct PivotMetric {
  std::string title;                                       // for the caption and CSV
  std::function<std::optional<double>(const Row&)> value;  // nothing when the cell lacks it
  const char* fmt;                                         // "" = metric_text
  Better better;
};

PivotMetric pivot_metric(const std::string& name, const std::vector<Row>& rows, bool any_baseline) {
  using V = std::optional<double>;
  if (name == "latency_ms")
    return {"median latency (ms)", [](const Row& r) { return has_latency(*r.cell) ? V(latency_ms(*r.cell)) : V(); },
            "%.4g", Better::lower};
  if (name == "gflops")
    return {"GFLOP/s",
            [](const Row& r) { return has_latency(*r.cell) && r.cell->flops > 0 ? V(gflops(*r.cell)) : V(); }, "%.4g",
            Better::higher};
  if (name == "tflops")
    return {"TFLOP/s",
            [](const Row& r) { return has_latency(*r.cell) && r.cell->flops > 0 ? V(gflops(*r.cell) / 1e3) : V(); },
            "%.4g", Better::higher};
  if (name == "bytes_mb")
    return {"bytes moved at minimum (MB)",
            [](const Row& r) { return r.cell->bytes > 0 ? V(r.cell->bytes / 1e6) : V(); }, "%.4g", Better::lower};
  if (name == "gbps")
    return {"achieved bandwidth over the minimum bytes (GB/s)",
            [](const Row& r) {
              return has_latency(*r.cell) && r.cell->bytes > 0 ? V(r.cell->bytes / r.cell->timing.median_s / 1e9) : V();
            },
            "%.4g", Better::higher};
  if (name == "peak_mb")
    return {"peak memory (MB)",
            [](const Row& r) { return ok(*r.cell) && r.cell->peak_bytes > 0 ? V(peak_mb(*r.cell)) : V(); }, "%.4g",
            Better::lower};
  if (name == "flop_reduction")
    return {"FLOP reduction (×) against the model's exact multi-head attention",
            [](const Row& r) { return r.cell->flops > 0 ? V(model_flops(*r.cell) / r.cell->flops) : V(); }, "%.3g",
            Better::higher};
  if (name == "speedup" && any_baseline)
    return {"speedup (×) over the baseline", [](const Row& r) { return has_speedup(r) ? V(speedup(r)) : V(); }, "%.2f",
            Better::higher};
  const std::vector<std::string> metrics = metric_names(rows);
  if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) {
    std::string available = "latency_ms, gflops, tflops, bytes_mb, gbps, peak_mb, flop_reduction, efficiency_length";
    if (any_baseline) available += ", speedup";
    for (const std::string& m : metrics) available += ", " + m;
    for (const char* task : {"ruler", "niah"})
      if (std::any_of(rows.begin(), rows.end(), [task](const Row& r) { return r.cell->task == task; }))
        available += std::string(", ") + task;
    throw std::invalid_argument("no cell has metric '" + name + "' (available: " + available + ")");
  }
  return {name,
          [name](const Row& r) {
            const double* v = ok(*r.cell) ? find_metric(*r.cell, name) : nullptr;
            return v ? V(*v) : V();
          },
          "", metric_better(name)};
}

// Rows: method (per run when there are several), first-seen. Columns: task instances, first-seen, headed
// by their shape (and task, when there are several tasks).
Table pivot_table(const std::vector<ResultsFile>& files, const std::vector<Row>& rows, const PivotMetric& metric) {
  const bool with_run = several_runs(files);
  std::vector<std::pair<std::string, std::string>> row_keys;  // (run, method)
  std::vector<std::pair<std::string, std::string>> col_keys;  // (task, task_params)
  std::vector<std::string> col_shapes;
  std::map<std::pair<std::size_t, std::size_t>, const Row*> at;
  std::set<std::string> tasks;
  for (const Row& r : rows) {
    const std::pair<std::string, std::string> rk{with_run ? r.file->manifest_name : "", r.method};
    const std::pair<std::string, std::string> ck{r.cell->task, r.cell->task_params};
    auto ri = std::find(row_keys.begin(), row_keys.end(), rk);
    if (ri == row_keys.end()) ri = row_keys.insert(row_keys.end(), rk);
    auto ci = std::find(col_keys.begin(), col_keys.end(), ck);
    if (ci == col_keys.end()) {
      ci = col_keys.insert(col_keys.end(), ck);
      col_shapes.push_back(r.shape);
    }
    tasks.insert(r.cell->task);
    // Two cells in one place (the same manifest run twice): the first in file order is shown.
    at.emplace(std::make_pair(ri - row_keys.begin(), ci - col_keys.begin()), &r);
  }
  std::vector<std::string> headers;
  for (std::size_t i = 0; i < col_keys.size(); ++i)
    headers.push_back(tasks.size() > 1 ? col_keys[i].first + " " + col_shapes[i] : col_shapes[i]);
  // Task instances of one shape (a needle at several depths) are told apart by their parameters.
  disambiguate(headers, col_keys);

  Table t;
  t.caption = caption(files, rows) + "; " + metric.title + " by method and shape";
  if (with_run) t.columns.push_back(text_column("run"));
  t.columns.push_back(text_column("method"));
  for (const std::string& h : headers) t.columns.push_back(number_column(h, {h}, metric.better));
  for (std::size_t ri = 0; ri < row_keys.size(); ++ri) {
    std::vector<Entry> e;
    if (with_run) e.push_back(text_entry(row_keys[ri].first));
    e.push_back(text_entry(row_keys[ri].second));
    for (std::size_t ci = 0; ci < col_keys.size(); ++ci) {
      const auto it = at.find({ri, ci});
      if (it == at.end()) {
        e.push_back(missing_entry());
        continue;
      }
      const std::optional<double> v = metric.value(*it->second);
      if (v)
        e.push_back(number_entry(*metric.fmt ? format(metric.fmt, *v) : metric_text(*v), *v));
      else if (!ok(*it->second->cell))
        e.push_back(status_entry(it->second->cell->status));
      else
        e.push_back(missing_entry());
    }
    t.rows.push_back(std::move(e));
  }
  return t;
}

// CAB's efficiency length: per method and pattern (the shape without its length), the shortest measured
// length from which the method beats the baseline at every longer measured length. "≤L" when it wins at
// every length measured, "—" when it does not win at the longest.
Table efficiency_table(const std::vector<ResultsFile>& files, const std::vector<Row>& rows) {
  const bool with_run = several_runs(files);
  std::vector<std::pair<std::string, std::string>> row_keys, col_keys;  // (run, method), (task, pattern)
  std::vector<std::string> col_headers;
  std::map<std::pair<std::size_t, std::size_t>, std::map<std::int64_t, double>> speedups;  // by length
  for (const Row& r : rows) {
    if (!has_speedup(r) || r.cell == r.baseline) continue;
    const std::pair<std::string, std::string> rk{with_run ? r.file->manifest_name : "", r.method};
    const std::pair<std::string, std::string> ck{r.cell->task,
                                                 params_without(r.cell->task_params, {"seq_len", "kv_len"})};
    auto ri = std::find(row_keys.begin(), row_keys.end(), rk);
    if (ri == row_keys.end()) ri = row_keys.insert(row_keys.end(), rk);
    auto ci = std::find(col_keys.begin(), col_keys.end(), ck);
    if (ci == col_keys.end()) {
      ci = col_keys.insert(col_keys.end(), ck);
      col_headers.push_back(pattern_text(r.shape));
    }
    speedups[{ri - row_keys.begin(), ci - col_keys.begin()}].emplace(std::max(r.cell->q_len, r.cell->kv_len),
                                                                     speedup(r));
  }
  if (row_keys.empty()) throw std::invalid_argument("no cell has a speedup over a baseline, so no efficiency length");
  disambiguate(col_headers, col_keys);

  Table t;
  t.caption = caption(files, rows) + "; efficiency length: shortest length from which each method beats the baseline";
  if (with_run) t.columns.push_back(text_column("run"));
  t.columns.push_back(text_column("method"));
  for (const std::string& h : col_headers) t.columns.push_back(number_column(h, {h}, Better::lower));
  for (std::size_t ri = 0; ri < row_keys.size(); ++ri) {
    std::vector<Entry> e;
    if (with_run) e.push_back(text_entry(row_keys[ri].first));
    e.push_back(text_entry(row_keys[ri].second));
    for (std::size_t ci = 0; ci < col_keys.size(); ++ci) {
      const auto it = speedups.find({ri, ci});
      if (it == speedups.end() || it->second.empty()) {
        e.push_back(missing_entry());
        continue;
      }
      // Walk down from the longest length while the method still wins.
      std::optional<std::int64_t> from;
      for (auto l = it->second.rbegin(); l != it->second.rend() && l->second > 1.0; ++l) from = l->first;
      if (!from) {
        e.push_back(missing_entry());
      } else if (*from == it->second.begin()->first) {
        const std::string shown = "≤" + std::to_string(*from);
        e.push_back(
            Entry{shown, "$\\le$" + std::to_string(*from), {std::to_string(*from)}, static_cast<double>(*from)});
      } else {
        e.push_back(number_entry(std::to_string(*from), static_cast<double>(*from)));
      }
    }
    t.rows.push_back(std::move(e));
  }
  return t;
}

// --- retrieval tables ---------------------------------------------------------------------------------

// The 95% Wilson score interval of a proportion p over n trials.
std::pair<double, double> wilson_interval(double p, double n) {
  constexpr double z = 1.959963984540054;
  const double denom = 1 + z * z / n;
  const double centre = (p + z * z / (2 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

// An average of accuracies: the mean, and the trials behind it (0 when some cell does not say).
struct Pooled {
  double mean = 0, trials = 0;
};

Pooled pool(const std::vector<std::pair<double, double>>& accuracy_trials) {
  Pooled p;
  bool all_trials = true;
  for (const auto& [accuracy, trials] : accuracy_trials) {
    p.mean += accuracy;
    p.trials += trials;
    all_trials = all_trials && trials > 0;
  }
  p.mean /= static_cast<double>(accuracy_trials.size());
  if (!all_trials) p.trials = 0;
  return p;
}

// Accuracy in % (one decimal) in md and LaTeX; in CSV the % and its 95% interval (empty without trials).
Entry accuracy_entry(const Pooled& p) {
  const std::string shown = format("%.1f", 100 * p.mean);
  std::vector<std::string> csv{full_precision(100 * p.mean), "", ""};
  if (p.trials > 0) {
    const auto [lo, hi] = wilson_interval(p.mean, p.trials);
    csv[1] = full_precision(100 * lo);
    csv[2] = full_precision(100 * hi);
  }
  return Entry{shown, shown, csv, p.mean};
}

// The trials behind a cell's accuracy: its metric `trials`, else its task parameter `samples`, else 0.
double cell_trials(const CellRecord& c) {
  if (const double* t = find_metric(c, "trials")) return *t;
  const json p = parse_or_null(c.task_params);
  if (p.is_object() && p.contains("samples") && p["samples"].is_number()) return p["samples"].get<double>();
  return 0;
}

// RULER's table: rows methods, columns lengths then their average; each length the mean accuracy over
// the task's `averaged` parameter (RULER's variants, the needle's depths). Parameters other than the length
// and the averaged one (a needle's signal) split a method into several rows.
Table retrieval_table(const std::vector<ResultsFile>& files, const std::vector<Row>& rows, const std::string& task,
                      const std::string& averaged, const std::string& title) {
  const bool with_run = several_runs(files);
  struct Key {
    std::string run, method, rest;
    bool operator==(const Key& o) const { return run == o.run && method == o.method && rest == o.rest; }
  };
  std::vector<Key> row_keys;
  std::set<std::int64_t> lengths;
  std::vector<std::string> averaged_values;  // first-seen, for the caption
  std::set<std::string> rests;
  // (row, length) -> averaged value -> the first cell there
  std::map<std::pair<std::size_t, std::int64_t>, std::map<std::string, const Row*>> at;
  for (const Row& r : rows) {
    if (r.cell->task != task) continue;
    const json p = parse_or_null(r.cell->task_params);
    std::string value = p.is_object() && p.contains(averaged) ? value_text(p[averaged]) : "";
    // RULER's single-needle family comes in three haystacks, each its own entry of the mean (as RULER's
    // niah_single_1/2/3); the haystack parameter of the other families is unused.
    if (task == "ruler" && value == "single" && p.contains("haystack")) value += "/" + value_text(p["haystack"]);
    const Key k{with_run ? r.file->manifest_name : "", r.method,
                params_without(r.cell->task_params, {"seq_len", "q_len", "kv_len", averaged, "haystack"})};
    auto ri = std::find(row_keys.begin(), row_keys.end(), k);
    if (ri == row_keys.end()) ri = row_keys.insert(row_keys.end(), k);
    const std::int64_t length = cell_length(*r.cell);
    lengths.insert(length);
    rests.insert(k.rest);
    if (std::find(averaged_values.begin(), averaged_values.end(), value) == averaged_values.end())
      averaged_values.push_back(value);
    at[{static_cast<std::size_t>(ri - row_keys.begin()), length}].emplace(value, &r);
  }
  if (row_keys.empty()) throw std::invalid_argument("no cell of task '" + task + "', so no " + task + " table");

  std::string caption_text = caption(files, rows) + "; " + title +
                             ": accuracy (%) by method and length, the mean over " +
                             std::to_string(averaged_values.size()) + " " + averaged + "(s) (";
  for (std::size_t i = 0; i < averaged_values.size(); ++i) caption_text += (i ? ", " : "") + averaged_values[i];
  caption_text += ")";
  Table t;
  t.caption = caption_text;
  if (with_run) t.columns.push_back(text_column("run"));
  t.columns.push_back(text_column("method"));
  for (const std::int64_t l : lengths) {
    // Appends only: GCC 12 warns falsely (-Wrestrict, bug 105651) on "literal" + std::string when inlined.
    std::string csv = "L";
    csv += std::to_string(l);
    t.columns.push_back(number_column(length_text(l), {csv, csv + "_ci_low", csv + "_ci_high"}, Better::higher));
  }
  t.columns.push_back(number_column("avg", {"avg", "avg_ci_low", "avg_ci_high"}, Better::higher));

  for (std::size_t ri = 0; ri < row_keys.size(); ++ri) {
    std::vector<Entry> e;
    if (with_run) e.push_back(text_entry(row_keys[ri].run));
    e.push_back(text_entry(rests.size() > 1 ? row_keys[ri].method + " " + row_keys[ri].rest : row_keys[ri].method));
    std::vector<std::pair<double, double>> all;  // every cell of the row, for the average
    bool complete = true;
    for (const std::int64_t l : lengths) {
      const auto it = at.find({ri, l});
      std::vector<std::pair<double, double>> cells;
      std::string status;  // of the first cell that is not ok
      for (const std::string& v : averaged_values) {
        const auto cell = it == at.end() ? nullptr : (it->second.count(v) ? it->second.at(v) : nullptr);
        if (!cell) continue;
        const double* accuracy = ok(*cell->cell) ? find_metric(*cell->cell, "accuracy") : nullptr;
        if (accuracy)
          cells.emplace_back(*accuracy, cell_trials(*cell->cell));
        else if (status.empty())
          status = ok(*cell->cell) ? "" : cell->cell->status;
      }
      // A mean over some variants only would not compare with the others' means: all or nothing.
      if (cells.size() != averaged_values.size()) {
        complete = false;
        e.push_back(status.empty() ? missing_entry(3) : status_entry(status, 3));
        continue;
      }
      all.insert(all.end(), cells.begin(), cells.end());
      e.push_back(accuracy_entry(pool(cells)));
    }
    e.push_back(complete ? accuracy_entry(pool(all)) : missing_entry(3));
    t.rows.push_back(std::move(e));
  }
  return t;
}

// Context parallelism: per task instance holding distributed cells, the single-process flash cell beside
// every distributed one, with what the distributed plans counted (docs/context-parallel.md).
bool has_distributed(const std::vector<Row>& rows) {
  return std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.cell->family == "distributed"; });
}

std::vector<Table> context_parallel_tables(const std::vector<ResultsFile>& files, const std::vector<Row>& rows) {
  const bool with_run = several_runs(files);
  std::set<std::string> tasks;
  for (const Row& r : rows) tasks.insert(r.cell->task);
  // Task instances (of one file) in first-seen order, those with a distributed cell only.
  std::vector<std::tuple<const ResultsFile*, std::string, std::string>> instances;
  for (const Row& r : rows) {
    if (r.cell->family != "distributed") continue;
    const std::tuple<const ResultsFile*, std::string, std::string> key{r.file, r.cell->task, r.cell->task_params};
    if (std::find(instances.begin(), instances.end(), key) == instances.end()) instances.push_back(key);
  }
  std::vector<Table> tables;
  for (const auto& [file, task, params] : instances) {
    std::vector<const Row*> members;
    const Row* flash = nullptr;
    for (const Row& r : rows) {
      if (r.file != file || r.cell->task != task || r.cell->task_params != params) continue;
      if (r.cell->family == "distributed") members.push_back(&r);
      if (!flash && r.cell->method_name == "flash" && has_latency(*r.cell)) flash = &r;
    }
    if (flash) members.insert(members.begin(), flash);
    Table t;
    t.caption = "context parallel — ";
    if (with_run) t.caption += file->manifest_name + " ";
    if (tasks.size() > 1) t.caption += task + " ";
    t.caption += members.back()->shape;
    t.columns.push_back(text_column("method"));
    t.columns.push_back(number_column("ranks", {"ranks"}, Better::none));
    t.columns.push_back(number_column("latency (ms)", {"latency_ms", "latency_q1_ms", "latency_q3_ms"}, Better::lower));
    t.columns.push_back(number_column("speedup vs flash (×)", {"speedup_vs_flash"}, Better::higher));
    t.columns.push_back(number_column("comm MB/rank", {"comm_mb_per_rank"}, Better::lower));
    t.columns.push_back(number_column("comm share", {"comm_share"}, Better::lower));
    t.columns.push_back(number_column("imbalance", {"imbalance"}, Better::lower));
    for (const Row* r : members) {
      const CellRecord& c = *r->cell;
      std::vector<Entry> e;
      e.push_back(text_entry(r->method));
      const double* ranks = ok(c) ? find_metric(c, "ranks") : nullptr;
      const double one = 1;
      if (r == flash) ranks = &one;
      e.push_back(ranks ? number_entry(format("%.0f", *ranks), *ranks) : status_entry(c.status));
      e.push_back(latency_entry(c));
      if (flash && has_latency(c)) {
        const double x = flash->cell->timing.median_s / c.timing.median_s;
        e.push_back(number_entry(format("%.2f", x), x));
      } else {
        e.push_back(missing_entry());
      }
      const double* bytes = ok(c) ? find_metric(c, "comm_bytes_per_rank") : nullptr;
      e.push_back(bytes ? number_entry(format("%.4g", *bytes / 1e6), *bytes / 1e6) : missing_entry());
      const double* comm = ok(c) ? find_metric(c, "comm_s") : nullptr;
      const double* compute = ok(c) ? find_metric(c, "compute_s") : nullptr;
      if (comm && compute && *comm + *compute > 0) {
        const double share = *comm / (*comm + *compute);
        e.push_back(number_entry(format("%.0f%%", share * 100), share));
      } else {
        e.push_back(missing_entry());
      }
      const double* imbalance = ok(c) ? find_metric(c, "imbalance") : nullptr;
      e.push_back(imbalance ? number_entry(format("%.2f", *imbalance), *imbalance) : missing_entry());
      t.rows.push_back(std::move(e));
    }
    tables.push_back(std::move(t));
  }
  return tables;
}

}  // namespace

bool has_task(const std::vector<ResultsFile>& files, const std::string& task) {
  for (const ResultsFile& f : files)
    for (const CellRecord& c : f.cells)
      if (c.task == task) return true;
  return false;
}

std::string render_report(const std::vector<ResultsFile>& given, const ReportOptions& opts) {
  const std::vector<ResultsFile> files = join_shards(given);  // the shards of one suite read as their merge
  bool any_baseline = false;
  const std::vector<Row> rows = collect_rows(files, opts.baseline, &any_baseline);
  // A baseline chosen here rather than in the manifests is named in the caption.
  auto named = [&](Table t) {
    if (!opts.baseline.empty()) t.caption += "; speedups over " + opts.baseline;
    return t;
  };
  if (opts.metric.empty()) {
    std::string out = render(named(summary_table(files, rows, any_baseline)), opts.format);
    // Distributed cells add a table per shape (Markdown and LaTeX; CSV stays one table).
    if (opts.format != ReportFormat::csv && has_distributed(rows))
      for (const Table& t : context_parallel_tables(files, rows)) {
        out += '\n';  // appended in two steps: GCC 12 warns falsely on "literal" + std::string (bug 105651)
        out += render(t, opts.format);
      }
    return out;
  }
  if (opts.metric == "efficiency_length") return render(named(efficiency_table(files, rows)), opts.format);
  if (opts.metric == "ruler") return render(retrieval_table(files, rows, "ruler", "variant", "RULER"), opts.format);
  if (opts.metric == "niah")
    return render(retrieval_table(files, rows, "niah", "depth", "needle in a haystack"), opts.format);
  return render(named(pivot_table(files, rows, pivot_metric(opts.metric, rows, any_baseline))), opts.format);
}

Comparison compare_results(const ResultsFile& a, const ResultsFile& b, const CompareOptions& opts) {
  std::map<std::string, const CellRecord*> in_a;
  for (const CellRecord& c : a.cells) in_a.emplace(c.id, &c);
  std::vector<const CellRecord*> cells;
  for (const CellRecord* c : sorted_cells(b))
    if (in_a.count(c->id)) cells.push_back(c);
  if (cells.empty())
    throw std::invalid_argument(b.path + " and " + a.path + " have no cell in common (cells are matched by id: " +
                                "method, parameters, task, task parameters)");
  const auto names = method_names(b);

  Comparison out;
  const CellRecord* worst = nullptr;
  Table t;
  for (const char* h : {"method", "task", "shape"}) t.columns.push_back(text_column(h));
  t.columns.push_back(number_column("A (ms)", {"a_latency_ms"}, Better::none));
  t.columns.push_back(number_column("B (ms)", {"b_latency_ms"}, Better::none));
  t.columns.push_back(number_column("B/A − 1", {"delta"}, Better::none));
  t.columns.push_back(number_column("p (U test)", {"p_value"}, Better::none));
  t.columns.push_back(text_column("verdict"));
  const std::string within = format("same (within ±%g%%)", opts.threshold * 100);
  for (const CellRecord* cb : cells) {
    const CellRecord& ca = *in_a.at(cb->id);
    std::vector<Entry> e{text_entry(names.at(cb)), text_entry(cb->task), text_entry(shape_text(*cb))};
    auto ms = [](const CellRecord& c) {
      return has_latency(c) ? number_entry(format("%.4g", latency_ms(c)), latency_ms(c)) : status_entry(c.status);
    };
    e.push_back(ms(ca));
    e.push_back(ms(*cb));
    if (!has_latency(ca) || !has_latency(*cb)) {
      e.push_back(missing_entry());
      e.push_back(missing_entry());
      e.push_back(text_entry(std::string("not compared: ") + (has_latency(ca) ? "B" : "A") + " has no timing (" +
                             (has_latency(ca) ? cb->status : ca.status) + ")"));
      t.rows.push_back(std::move(e));
      continue;
    }
    const double delta = cb->timing.median_s / ca.timing.median_s - 1;
    const double p = mann_whitney_p(ca.samples, cb->samples);
    ++out.compared;
    if (std::abs(delta) > opts.threshold) ++out.over;
    if (!worst || std::abs(delta) > out.max_delta) {
      out.max_delta = std::abs(delta);
      worst = cb;
    }
    e.push_back(number_entry(format("%+.2f%%", delta * 100), delta));
    e.push_back(std::isnan(p) ? missing_entry() : number_entry(format("%.2g", p), p));
    std::string verdict = within;
    if (std::abs(delta) > opts.threshold)
      verdict = std::string(delta > 0 ? "slower" : "faster") + (!std::isnan(p) && p < 0.05 ? "" : " (not significant)");
    e.push_back(text_entry(verdict));
    t.rows.push_back(std::move(e));
  }

  // Whether the two files come from one build; a comparison across builds is what it is for, but says so.
  auto revision = [](const ResultsFile& f) {
    const json env = parse_or_null(f.environment);
    return env.is_object() && env.contains("git_revision") && env["git_revision"].is_string()
               ? env["git_revision"].get<std::string>()
               : std::string("?");
  };
  const std::size_t only_a = a.cells.size() - cells.size(), only_b = b.cells.size() - cells.size();
  t.caption = "attnbench compare — B = " + b.path + " against A = " + a.path + ": " + std::to_string(cells.size()) +
              " cells in both, " + std::to_string(out.compared) + " with timings, " +
              std::to_string(out.compared - out.over) + " within ±" + format("%g", opts.threshold * 100) + "%";
  if (worst)
    t.caption += ", largest |B/A − 1| " + format("%.2f%%", out.max_delta * 100) + " (" + names.at(worst) + " " +
                 shape_text(*worst) + ")";
  if (only_a || only_b)
    t.caption += "; " + std::to_string(only_a) + " only in A, " + std::to_string(only_b) + " only in B";
  const std::string ra = revision(a), rb = revision(b);
  t.caption += ra == rb ? "; one build (" + ra + ")" : "; builds differ (A " + ra + ", B " + rb + ")";
  out.text = render(t, opts.format);
  return out;
}

}  // namespace attnbench
