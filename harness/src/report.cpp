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

namespace attnbench {

ReportFormat parse_report_format(const std::string& s) {
  if (s == "md" || s == "markdown") return ReportFormat::markdown;
  if (s == "latex" || s == "tex") return ReportFormat::latex;
  if (s == "csv") return ReportFormat::csv;
  throw std::invalid_argument("unknown report format '" + s + "' (expected md, latex or csv)");
}

namespace {

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
      case '\\': out += "\\textbackslash{}"; break;
      case '&': case '%': case '$': case '#': case '_': case '{': case '}':
        out += '\\';
        out += ch;
        break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      default: out += ch;
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

struct Column {
  std::string header;                    // Markdown; LaTeX escapes it
  std::vector<std::string> csv_headers;  // one or more CSV columns
  bool numeric = false;                  // right-aligned
};

struct Entry {
  std::string md, latex;         // latex already escaped
  std::vector<std::string> csv;  // one field per CSV header of its column
};

struct Table {
  std::string caption;
  std::vector<Column> columns;
  std::vector<std::vector<Entry>> rows;
};

Entry text_entry(const std::string& s, std::size_t width = 0) {
  // A line break would end a table row in Markdown and LaTeX alike.
  std::string shown = replace_all(replace_all(s, "\r\n", " "), "\n", " ");
  if (width) shown = truncate(shown, width);
  return Entry{markdown_escape(shown), latex_escape(shown), {s}};
}

Entry missing_entry(std::size_t csv_fields = 1) {
  return Entry{kMissing, "---", std::vector<std::string>(csv_fields, "")};
}

// `shown` for md and LaTeX, `exact` for CSV.
Entry number_entry(const std::string& shown, double exact) {
  return Entry{shown, latex_escape(shown), {full_precision(exact)}};
}

// A non-ok cell in a column of numbers: its status in md and LaTeX, an empty CSV field.
Entry status_entry(const std::string& status) { return Entry{status, latex_escape(status), {""}}; }

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

std::string render_latex(const Table& t) {
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
  for (const auto& row : t.rows) {
    std::vector<std::string> cells;
    for (const Entry& e : row) cells.push_back(e.latex);
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
    case ReportFormat::markdown: return render_markdown(t);
    case ReportFormat::latex: return render_latex(t);
    case ReportFormat::csv: return render_csv(t);
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

// "L1024 D64 H8/8 fp32 causal"; "L1×4096" for cross attention; B and Dv only when they are not the usual.
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

json parse_or_null(const std::string& text) { return json::parse(text, nullptr, false); }

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

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

std::string baseline_label(const ResultsFile& f) {
  const json m = parse_or_null(f.manifest_text);
  if (m.is_object() && m.contains("baseline") && m["baseline"].is_string()) return m["baseline"].get<std::string>();
  return "";
}

bool ok(const CellRecord& c) { return c.status == "ok"; }
bool has_latency(const CellRecord& c) { return ok(c) && c.timing.median_s > 0; }

std::vector<Row> collect_rows(const std::vector<ResultsFile>& files, bool* any_baseline) {
  std::vector<Row> rows;
  *any_baseline = false;
  for (const ResultsFile& f : files) {
    const auto names = method_names(f);
    const std::string baseline = baseline_label(f);
    if (!baseline.empty()) *any_baseline = true;
    // The baseline of a task instance: the first ok cell of the baseline label with the same task parameters.
    std::map<std::pair<std::string, std::string>, const CellRecord*> baseline_of;
    std::vector<const CellRecord*> cells;
    for (const CellRecord& c : f.cells) cells.push_back(&c);
    std::stable_sort(cells.begin(), cells.end(),
                     [](const CellRecord* a, const CellRecord* b) { return a->index < b->index; });
    for (const CellRecord* c : cells)
      if (!baseline.empty() && c->method == baseline && has_latency(*c))
        baseline_of.emplace(std::make_pair(c->task, c->task_params), c);
    for (const CellRecord* c : cells) {
      const auto b = baseline_of.find({c->task, c->task_params});
      rows.push_back(Row{&f, c, names.at(c), shape_text(*c), b == baseline_of.end() ? nullptr : b->second});
    }
  }
  return rows;
}

bool several_runs(const std::vector<ResultsFile>& files) {
  for (const ResultsFile& f : files)
    if (f.manifest_name != files.front().manifest_name) return true;
  return false;
}

std::string caption(const std::vector<ResultsFile>& files, const std::vector<Row>& rows) {
  std::size_t n_ok = 0, n_failed = 0, n_unsupported = 0;
  for (const Row& r : rows) {
    if (r.cell->status == "ok") ++n_ok;
    else if (r.cell->status == "unsupported") ++n_unsupported;
    else ++n_failed;
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

Entry latency_entry(const CellRecord& c) {
  if (!has_latency(c)) return missing_entry(2);
  const double med = latency_ms(c), sd = c.timing.stddev_s * 1e3;
  const std::string m = format("%.4g", med), s = format("%.2g", sd);
  return Entry{m + " ± " + s, m + " $\\pm$ " + s, {full_precision(med), full_precision(sd)}};
}

Table summary_table(const std::vector<ResultsFile>& files, const std::vector<Row>& rows, bool any_baseline) {
  const bool with_run = several_runs(files);
  const std::vector<std::string> metrics = metric_names(rows);
  bool any_reason = false;
  for (const Row& r : rows) any_reason = any_reason || !r.cell->reason.empty();

  Table t;
  t.caption = caption(files, rows);
  if (with_run) t.columns.push_back({"run", {"run"}, false});
  t.columns.push_back({"method", {"method"}, false});
  t.columns.push_back({"task", {"task"}, false});
  t.columns.push_back({"shape", {"shape"}, false});
  t.columns.push_back({"status", {"status"}, false});
  t.columns.push_back({"latency (ms)", {"latency_ms", "latency_sd_ms"}, true});
  t.columns.push_back({"GFLOP/s", {"gflops"}, true});
  t.columns.push_back({"peak (MB)", {"peak_mb"}, true});
  if (any_baseline) t.columns.push_back({"speedup (×)", {"speedup"}, true});
  for (const std::string& m : metrics) t.columns.push_back({m, {m}, true});
  if (any_reason) t.columns.push_back({"reason", {"reason"}, false});

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
  std::string title;                                        // for the caption and CSV
  std::function<std::optional<double>(const Row&)> value;  // nothing when the cell lacks it
  const char* fmt;                                          // "" = metric_text
};

PivotMetric pivot_metric(const std::string& name, const std::vector<Row>& rows, bool any_baseline) {
  using V = std::optional<double>;
  if (name == "latency_ms")
    return {"median latency (ms)", [](const Row& r) { return has_latency(*r.cell) ? V(latency_ms(*r.cell)) : V(); },
            "%.4g"};
  if (name == "gflops")
    return {"GFLOP/s",
            [](const Row& r) { return has_latency(*r.cell) && r.cell->flops > 0 ? V(gflops(*r.cell)) : V(); },
            "%.4g"};
  if (name == "peak_mb")
    return {"peak memory (MB)",
            [](const Row& r) { return ok(*r.cell) && r.cell->peak_bytes > 0 ? V(peak_mb(*r.cell)) : V(); }, "%.4g"};
  if (name == "flop_reduction")
    return {"FLOP reduction (×) against the model's exact multi-head attention",
            [](const Row& r) { return r.cell->flops > 0 ? V(model_flops(*r.cell) / r.cell->flops) : V(); }, "%.3g"};
  if (name == "speedup" && any_baseline)
    return {"speedup (×) over the baseline", [](const Row& r) { return has_speedup(r) ? V(speedup(r)) : V(); },
            "%.2f"};
  const std::vector<std::string> metrics = metric_names(rows);
  if (std::find(metrics.begin(), metrics.end(), name) == metrics.end()) {
    std::string available = "latency_ms, gflops, peak_mb, flop_reduction, efficiency_length";
    if (any_baseline) available += ", speedup";
    for (const std::string& m : metrics) available += ", " + m;
    throw std::invalid_argument("no cell has metric '" + name + "' (available: " + available + ")");
  }
  return {name,
          [name](const Row& r) {
            const double* v = ok(*r.cell) ? find_metric(*r.cell, name) : nullptr;
            return v ? V(*v) : V();
          },
          ""};
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
  for (std::size_t i = 0; i < headers.size(); ++i)
    if (std::count(headers.begin(), headers.end(), headers[i]) > 1) headers[i] += " " + col_keys[i].second;

  Table t;
  t.caption = caption(files, rows) + "; " + metric.title + " by method and shape";
  if (with_run) t.columns.push_back({"run", {"run"}, false});
  t.columns.push_back({"method", {"method"}, false});
  for (const std::string& h : headers) t.columns.push_back({h, {h}, true});
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
  auto strip_length = [](const json& params) {
    json p = params;
    if (p.is_object()) {
      p.erase("seq_len");
      p.erase("kv_len");
    }
    return p.dump();
  };
  auto pattern_text = [](std::string shape) {
    // "L1024 D64 H8/8 fp32 causal" -> "D64 H8/8 fp32 causal" (and "B2 L1×4096 ..." -> "B2 ...").
    const auto at = shape.find('L');
    if (at != std::string::npos) {
      const auto end = shape.find(' ', at);
      shape.erase(at, end == std::string::npos ? std::string::npos : end - at + 1);
    }
    return shape;
  };
  std::vector<std::pair<std::string, std::string>> row_keys, col_keys;  // (run, method), (task, pattern)
  std::vector<std::string> col_headers;
  std::map<std::pair<std::size_t, std::size_t>, std::map<std::int64_t, double>> speedups;  // by length
  for (const Row& r : rows) {
    if (!has_speedup(r) || r.cell == r.baseline) continue;
    const std::pair<std::string, std::string> rk{with_run ? r.file->manifest_name : "", r.method};
    const std::pair<std::string, std::string> ck{r.cell->task, strip_length(parse_or_null(r.cell->task_params))};
    auto ri = std::find(row_keys.begin(), row_keys.end(), rk);
    if (ri == row_keys.end()) ri = row_keys.insert(row_keys.end(), rk);
    auto ci = std::find(col_keys.begin(), col_keys.end(), ck);
    if (ci == col_keys.end()) {
      ci = col_keys.insert(col_keys.end(), ck);
      col_headers.push_back(pattern_text(r.shape));
    }
    speedups[{ri - row_keys.begin(), ci - col_keys.begin()}].emplace(std::max(r.cell->q_len, r.cell->kv_len), speedup(r));
  }
  if (row_keys.empty()) throw std::invalid_argument("no cell has a speedup over a baseline, so no efficiency length");
  for (std::size_t i = 0; i < col_headers.size(); ++i)
    if (std::count(col_headers.begin(), col_headers.end(), col_headers[i]) > 1) col_headers[i] += " " + col_keys[i].second;

  Table t;
  t.caption = caption(files, rows) + "; efficiency length: shortest length from which each method beats the baseline";
  if (with_run) t.columns.push_back({"run", {"run"}, false});
  t.columns.push_back({"method", {"method"}, false});
  for (const std::string& h : col_headers) t.columns.push_back({h, {h}, true});
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
        e.push_back(Entry{kMissing, "---", {""}});
      } else if (*from == it->second.begin()->first) {
        const std::string shown = "≤" + std::to_string(*from);
        e.push_back(Entry{shown, "$\\le$" + std::to_string(*from), {std::to_string(*from)}});
      } else {
        e.push_back(number_entry(std::to_string(*from), static_cast<double>(*from)));
      }
    }
    t.rows.push_back(std::move(e));
  }
  return t;
}

}  // namespace

std::string render_report(const std::vector<ResultsFile>& files, const ReportOptions& opts) {
  bool any_baseline = false;
  const std::vector<Row> rows = collect_rows(files, &any_baseline);
  if (opts.metric.empty()) return render(summary_table(files, rows, any_baseline), opts.format);
  if (opts.metric == "efficiency_length") return render(efficiency_table(files, rows), opts.format);
  return render(pivot_table(files, rows, pivot_metric(opts.metric, rows, any_baseline)), opts.format);
}

}  // namespace attnbench
