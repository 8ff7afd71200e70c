// SVG figures written by hand: needle heatmaps and log-log scaling curves (layout in docs/report.md).
#include "attnbench/figures.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "attnbench/merge.hpp"
#include "attnbench/report.hpp"

namespace attnbench {

using namespace report_detail;

namespace {

// --- SVG text -----------------------------------------------------------------------------------------

// Coordinates with one decimal: fixed snprintf formats keep the bytes the same on every machine.
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0; a line break in a label becomes a space.
        out += static_cast<unsigned char>(ch) < 0x20 ? ' ' : ch;
    }
  }
  return out;
}

std::string svg_open(double width, double height, const std::string& title) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
         px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) + " " + px(height) +
         "\" font-family=\"sans-serif\">\n<title>" + xml_escape(title) + "</title>\n<rect width=\"" + px(width) +
         "\" height=\"" + px(height) + "\" fill=\"#ffffff\"/>\n";
}

// anchor: "start", "middle" or "end"; extra: more attributes, already escaped.
std::string svg_text(double x, double y, const std::string& text, const char* anchor, int size, const std::string& cls,
                     const std::string& extra = "") {
  return "<text class=\"" + cls + "\" x=\"" + px(x) + "\" y=\"" + px(y) + "\" text-anchor=\"" + anchor +
         "\" font-size=\"" + std::to_string(size) + "\"" + extra + ">" + xml_escape(text) + "</text>\n";
}

std::string svg_line(double x1, double y1, double x2, double y2, const std::string& cls, const char* stroke) {
  return "<line class=\"" + cls + "\" x1=\"" + px(x1) + "\" y1=\"" + px(y1) + "\" x2=\"" + px(x2) + "\" y2=\"" +
         px(y2) + "\" stroke=\"" + stroke + "\"/>\n";
}

std::string number_text(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// --- cells, in the report's order ---------------------------------------------------------------------

struct FigureCell {
  const CellRecord* cell;
  std::string run;     // the manifest name when the files come from several runs, else ""
  std::string method;  // as the tables name it
};

std::vector<FigureCell> figure_cells(const std::vector<ResultsFile>& files) {
  const bool with_run = several_runs(files);
  std::vector<FigureCell> out;
  for (const ResultsFile& f : files) {
    const auto names = method_names(f);
    std::vector<const CellRecord*> cells;
    for (const CellRecord& c : f.cells) cells.push_back(&c);
    std::stable_sort(cells.begin(), cells.end(),
                     [](const CellRecord* a, const CellRecord* b) { return a->index < b->index; });
    for (const CellRecord* c : cells) out.push_back(FigureCell{c, with_run ? f.manifest_name : "", names.at(c)});
  }
  return out;
}

std::string series_label(const std::string& run, const std::string& method) {
  return run.empty() ? method : run + " " + method;
}

const double* find_metric(const CellRecord& c, const std::string& name) {
  for (const auto& m : c.metrics)
    if (m.first == name) return &m.second;
  return nullptr;
}

// File names unique within one kind of figure: a second "x.svg" becomes "x-2.svg".
class FileNames {
 public:
  std::string take(const std::string& stem) {
    const std::string base = sanitize_file_name(stem);
    std::string name = base + ".svg";
    for (int i = 2; taken_.count(name); ++i) name = base + "-" + std::to_string(i) + ".svg";
    taken_.insert(name);
    return name;
  }

 private:
  std::set<std::string> taken_;
};

// --- needle heatmaps ----------------------------------------------------------------------------------

// Accuracy 0 -> red, 0.5 -> yellow, 1 -> green, linear in RGB between the three.
struct Rgb {
  double r, g, b;
};
constexpr Rgb kRed{215, 48, 39}, kYellow{250, 220, 60}, kGreen{26, 152, 80};

std::string hex(const Rgb& c) {
  char buf[8];
  auto byte = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 255.0))); };
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", byte(c.r), byte(c.g), byte(c.b));
  return buf;
}

std::string accuracy_colour(double a) {
  a = std::clamp(a, 0.0, 1.0);
  const Rgb& from = a < 0.5 ? kRed : kYellow;
  const Rgb& to = a < 0.5 ? kYellow : kGreen;
  const double t = a < 0.5 ? a / 0.5 : (a - 0.5) / 0.5;
  return hex(Rgb{from.r + t * (to.r - from.r), from.g + t * (to.g - from.g), from.b + t * (to.b - from.b)});
}

std::optional<double> depth_of(const CellRecord& c) {
  const json p = json::parse(c.task_params, nullptr, false);
  if (p.is_object() && p.contains("depth") && p["depth"].is_number()) return p["depth"].get<double>();
  return std::nullopt;
}

std::string heatmap_svg(const std::string& title, const std::vector<std::int64_t>& lengths,
                        const std::vector<double>& depths,
                        const std::map<std::pair<double, std::int64_t>, const CellRecord*>& at) {
  const double left = 84, top = 56;
  const double cw = std::clamp(560.0 / static_cast<double>(lengths.size()), 28.0, 72.0);
  const double ch = std::clamp(360.0 / static_cast<double>(depths.size()), 18.0, 40.0);
  const double grid_w = cw * static_cast<double>(lengths.size()), grid_h = ch * static_cast<double>(depths.size());
  const double legend_x = left + grid_w + 28;
  const double width = std::max(legend_x + 90, 360.0), height = top + grid_h + 64;

  std::string s = svg_open(width, height, title);
  s += "<defs>\n<linearGradient id=\"accuracy-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">\n";
  for (const double stop : {0.0, 0.5, 1.0})
    s += "<stop offset=\"" + number_text("%g", stop) + "\" stop-color=\"" + accuracy_colour(stop) + "\"/>\n";
  s += "</linearGradient>\n</defs>\n";
  s += svg_text(width / 2, 28, title, "middle", 16, "title");

  s += "<g class=\"cells\">\n";
  for (std::size_t di = 0; di < depths.size(); ++di) {
    for (std::size_t li = 0; li < lengths.size(); ++li) {
      const double x = left + cw * static_cast<double>(li), y = top + ch * static_cast<double>(di);
      const auto it = at.find({depths[di], lengths[li]});
      const CellRecord* c = it == at.end() ? nullptr : it->second;
      const double* accuracy = c && c->status == "ok" ? find_metric(*c, "accuracy") : nullptr;
      const std::string where = length_text(lengths[li]) + ", depth " + number_text("%g", depths[di]) + "%: ";
      const std::string tip = accuracy ? number_text("%.1f%%", 100 * *accuracy) : c ? c->status : "no result";
      s += "<rect class=\"cell\" x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"" + px(cw) + "\" height=\"" + px(ch) +
           "\" fill=\"" + (accuracy ? accuracy_colour(*accuracy) : std::string("#d9d9d9")) +
           "\" stroke=\"#ffffff\"><title>" + xml_escape(where + tip) + "</title></rect>\n";
      if (accuracy && ch >= 14)
        s += svg_text(x + cw / 2, y + ch / 2 + 4, number_text("%.0f", 100 * *accuracy), "middle", 10, "value");
    }
  }
  s += "</g>\n";

  for (std::size_t li = 0; li < lengths.size(); ++li)
    s += svg_text(left + cw * (static_cast<double>(li) + 0.5), top + grid_h + 18, length_text(lengths[li]), "middle",
                  11, "tick-label");
  for (std::size_t di = 0; di < depths.size(); ++di)
    s += svg_text(left - 8, top + ch * (static_cast<double>(di) + 0.5) + 4, number_text("%g%%", depths[di]), "end", 11,
                  "tick-label");
  s += svg_text(left + grid_w / 2, top + grid_h + 44, "context length (tokens)", "middle", 12, "axis-title");
  const double mid_y = top + grid_h / 2;
  s += svg_text(20, mid_y, "needle depth (%)", "middle", 12, "axis-title",
                " transform=\"rotate(-90 20 " + px(mid_y) + ")\"");

  // The colour legend: the gradient bar with 0, 50 and 100% marked.
  s += "<g class=\"legend\">\n";
  s += svg_text(legend_x, top - 8, "accuracy", "start", 11, "legend-title");
  s += "<rect x=\"" + px(legend_x) + "\" y=\"" + px(top) + "\" width=\"16\" height=\"" + px(grid_h) +
       "\" fill=\"url(#accuracy-scale)\" stroke=\"#808080\"/>\n";
  for (const double a : {0.0, 0.5, 1.0}) {
    const double y = top + grid_h * (1 - a);
    s += svg_line(legend_x + 16, y, legend_x + 20, y, "legend-tick", "#808080");
    s += svg_text(legend_x + 24, y + 4, number_text("%.0f%%", 100 * a), "start", 10, "legend-label");
  }
  s += "</g>\n</svg>\n";
  return s;
}

// --- log-log scaling curves ---------------------------------------------------------------------------

constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#7f7f7f"};
constexpr std::size_t kPaletteSize = sizeof kPalette / sizeof kPalette[0];

struct Series {
  std::string label;
  std::map<std::int64_t, double> points;  // length -> value; the first cell at a length is kept
};

struct Axis {
  double lo, hi;  // log10 of the ends
  double to_px(double v, double from, double span) const { return from + (std::log10(v) - lo) / (hi - lo) * span; }
};

Axis log_axis(double min_v, double max_v) {
  double lo = std::log10(min_v), hi = std::log10(max_v);
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  } else {
    const double pad = 0.05 * (hi - lo);
    lo -= pad;
    hi += pad;
  }
  return Axis{lo, hi};
}

// 1-2-5 steps per decade inside the axis; decades only when that gives more than ten; the data's ends when
// the axis is too narrow to hold two steps.
std::vector<double> value_ticks(const Axis& a, double min_v, double max_v) {
  auto ticks_with = [&a](std::initializer_list<double> mantissas) {
    std::vector<double> t;
    for (int k = static_cast<int>(std::floor(a.lo)); k <= static_cast<int>(std::ceil(a.hi)); ++k)
      for (const double m : mantissas) {
        const double v = m * std::pow(10.0, k);
        if (std::log10(v) >= a.lo && std::log10(v) <= a.hi) t.push_back(v);
      }
    return t;
  };
  std::vector<double> t = ticks_with({1, 2, 5});
  if (t.size() > 10) t = ticks_with({1});
  if (t.size() < 2) {
    t = {min_v};
    if (max_v > min_v) t.push_back(max_v);
  }
  return t;
}

std::string scaling_svg(const std::string& title, const std::string& y_title, const std::vector<Series>& series) {
  std::set<std::int64_t> length_set;
  double min_v = INFINITY, max_v = 0;
  std::size_t longest_label = 0;
  for (const Series& s : series) {
    longest_label = std::max(longest_label, s.label.size());
    for (const auto& [l, v] : s.points) {
      length_set.insert(l);
      min_v = std::min(min_v, v);
      max_v = std::max(max_v, v);
    }
  }
  const std::vector<std::int64_t> lengths(length_set.begin(), length_set.end());
  const Axis ax = log_axis(static_cast<double>(lengths.front()), static_cast<double>(lengths.back()));
  const Axis ay = log_axis(min_v, max_v);
  const double x0 = 84, y0 = 50, pw = 440, ph = 320;
  const double legend_x = x0 + pw + 24;
  const double width = legend_x + 34 + 7 * static_cast<double>(std::min<std::size_t>(longest_label, 60)) + 12;
  const double height = std::max(y0 + ph + 60, y0 + 18.0 * static_cast<double>(series.size()) + 20);
  auto X = [&](double v) { return ax.to_px(v, x0, pw); };
  auto Y = [&](double v) { return ay.to_px(v, y0 + ph, -ph); };

  std::string s = svg_open(width, height, title);
  s += svg_text(x0 + pw / 2, 28, title, "middle", 15, "title");
  s += "<g class=\"grid\">\n";
  std::size_t step = (lengths.size() + 11) / 12;  // at most twelve length labels
  for (std::size_t i = 0; i < lengths.size(); i += step) {
    const double x = X(static_cast<double>(lengths[i]));
    s += svg_line(x, y0, x, y0 + ph, "grid-line", "#e6e6e6");
    s += svg_text(x, y0 + ph + 18, length_text(lengths[i]), "middle", 11, "tick-label");
  }
  for (const double v : value_ticks(ay, min_v, max_v)) {
    const double y = Y(v);
    s += svg_line(x0, y, x0 + pw, y, "grid-line", "#e6e6e6");
    s += svg_text(x0 - 6, y + 4, number_text("%g", v), "end", 11, "tick-label");
  }
  s += "</g>\n";
  s += "<rect class=\"frame\" x=\"" + px(x0) + "\" y=\"" + px(y0) + "\" width=\"" + px(pw) + "\" height=\"" + px(ph) +
       "\" fill=\"none\" stroke=\"#000000\"/>\n";
  s += svg_text(x0 + pw / 2, y0 + ph + 44, "length (tokens, log scale)", "middle", 12, "axis-title");
  const double mid_y = y0 + ph / 2;
  s += svg_text(20, mid_y, y_title + ", log scale", "middle", 12, "axis-title",
                " transform=\"rotate(-90 20 " + px(mid_y) + ")\"");

  for (std::size_t i = 0; i < series.size(); ++i) {
    const std::string colour = kPalette[i % kPaletteSize];
    const std::string dash = i >= kPaletteSize ? " stroke-dasharray=\"6 3\"" : "";
    const Series& se = series[i];
    s += "<g class=\"method\">\n";
    if (se.points.size() >= 2) {
      std::string points;
      for (const auto& [l, v] : se.points)
        points += (points.empty() ? "" : " ") + px(X(static_cast<double>(l))) + "," + px(Y(v));
      s += "<polyline class=\"series\" points=\"" + points + "\" fill=\"none\" stroke=\"" + colour +
           "\" stroke-width=\"2\"" + dash + "/>\n";
    }
    for (const auto& [l, v] : se.points)
      s += "<circle class=\"point\" cx=\"" + px(X(static_cast<double>(l))) + "\" cy=\"" + px(Y(v)) +
           "\" r=\"3\" fill=\"" + colour + "\"><title>" +
           xml_escape(se.label + ", " + length_text(l) + ": " + number_text("%.4g", v)) + "</title></circle>\n";
    s += "</g>\n";
    const double ly = y0 + 8 + 18 * static_cast<double>(i);
    s += "<g class=\"legend-entry\">\n<line x1=\"" + px(legend_x) + "\" y1=\"" + px(ly) + "\" x2=\"" +
         px(legend_x + 24) + "\" y2=\"" + px(ly) + "\" stroke=\"" + colour + "\" stroke-width=\"2\"" + dash + "/>\n";
    s += svg_text(legend_x + 30, ly + 4, se.label, "start", 11, "legend-label");
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

// Per pattern, one series per method, of what `value` gives (nothing = the cell is left out).
template <class Value>
std::vector<Figure> scaling_figures(const std::vector<ResultsFile>& files, const std::string& prefix,
                                    const std::string& what, const std::string& y_title, Value value) {
  struct Pattern {
    std::string task, params, shape;
    std::vector<Series> series;
  };
  std::vector<Pattern> patterns;
  for (const FigureCell& fc : figure_cells(files)) {
    const CellRecord& c = *fc.cell;
    if (c.task_kind == "retrieval" || c.status != "ok") continue;
    const std::optional<double> v = value(c);
    if (!v || !(*v > 0)) continue;  // a log axis has no place for zero
    const std::string params = params_without(c.task_params, {"seq_len", "kv_len"});
    auto p = std::find_if(patterns.begin(), patterns.end(),
                          [&](const Pattern& q) { return q.task == c.task && q.params == params; });
    if (p == patterns.end())
      p = patterns.insert(patterns.end(), Pattern{c.task, params, pattern_text(shape_text(c)), {}});
    const std::string label = series_label(fc.run, fc.method);
    auto se = std::find_if(p->series.begin(), p->series.end(), [&](const Series& s) { return s.label == label; });
    if (se == p->series.end()) se = p->series.insert(p->series.end(), Series{label, {}});
    se->points.emplace(std::max(c.q_len, c.kv_len), *v);
  }
  std::vector<std::string> names;
  for (const Pattern& p : patterns) names.push_back(p.task + " " + p.shape);
  // Patterns of one shape (two window sizes of a mask) are told apart by their parameters.
  std::vector<std::string> shown = names;
  std::vector<std::pair<std::string, std::string>> keys;
  for (const Pattern& p : patterns) keys.emplace_back(p.task, p.params);
  report_detail::disambiguate(shown, keys);

  FileNames file_names;
  std::vector<Figure> out;
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    std::set<std::int64_t> lengths;
    for (const Series& s : patterns[i].series)
      for (const auto& point : s.points) lengths.insert(point.first);
    if (lengths.size() < 2) continue;  // a curve needs two lengths
    const std::string title = shown[i] + ": " + what + " against length";
    out.push_back(
        Figure{file_names.take(prefix + "_" + shown[i]), title, scaling_svg(title, y_title, patterns[i].series)});
  }
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (!(out << text) || !out.flush()) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

std::string sanitize_file_name(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    const bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                      ch == '-' || ch == '_';
    const char c = keep ? ch : '_';
    if (c == '_' && !out.empty() && out.back() == '_') continue;
    out += c;
  }
  while (!out.empty() && (out.front() == '_' || out.front() == '.')) out.erase(out.begin());
  while (!out.empty() && out.back() == '_') out.pop_back();
  if (out.size() > 120) out.resize(120);
  return out.empty() ? "figure" : out;
}

std::vector<Figure> needle_heatmaps(const std::vector<ResultsFile>& files) {
  struct Heatmap {
    std::string label, rest;
    std::set<std::int64_t> lengths;
    std::set<double> depths;
    std::map<std::pair<double, std::int64_t>, const CellRecord*> at;
  };
  std::vector<Heatmap> maps;
  std::set<std::string> rests;
  for (const FigureCell& fc : figure_cells(files)) {
    const CellRecord& c = *fc.cell;
    const std::optional<double> depth = depth_of(c);
    if (c.task != "niah" || !depth) continue;
    const std::string label = series_label(fc.run, fc.method);
    const std::string rest = params_without(c.task_params, {"seq_len", "q_len", "kv_len", "depth"});
    rests.insert(rest);
    auto m =
        std::find_if(maps.begin(), maps.end(), [&](const Heatmap& h) { return h.label == label && h.rest == rest; });
    if (m == maps.end()) m = maps.insert(maps.end(), Heatmap{label, rest, {}, {}, {}});
    const std::int64_t length = cell_length(c);
    m->lengths.insert(length);
    m->depths.insert(*depth);
    m->at.emplace(std::make_pair(*depth, length), &c);
  }
  FileNames file_names;
  std::vector<Figure> out;
  for (const Heatmap& m : maps) {
    const std::string name = rests.size() > 1 ? m.label + " " + m.rest : m.label;
    const std::string title = "Needle in a haystack: " + name;
    out.push_back(
        Figure{file_names.take("niah_heatmap_" + name), title,
               heatmap_svg(title, {m.lengths.begin(), m.lengths.end()}, {m.depths.begin(), m.depths.end()}, m.at)});
  }
  return out;
}

std::vector<Figure> latency_figures(const std::vector<ResultsFile>& files) {
  return scaling_figures(files, "latency", "median latency", "median latency (ms)", [](const CellRecord& c) {
    return c.timing.median_s > 0 ? std::optional<double>(c.timing.median_s * 1e3) : std::nullopt;
  });
}

std::vector<Figure> memory_figures(const std::vector<ResultsFile>& files) {
  return scaling_figures(files, "memory", "peak memory", "peak memory (MB)", [](const CellRecord& c) {
    return c.peak_bytes > 0 ? std::optional<double>(static_cast<double>(c.peak_bytes) / 1e6) : std::nullopt;
  });
}

std::vector<std::string> write_figures(const std::vector<ResultsFile>& given, const std::string& dir) {
  namespace fs = std::filesystem;
  const std::vector<ResultsFile> files = join_shards(given);  // the shards of one suite drawn as their merge
  fs::create_directories(dir);
  std::vector<std::string> written;
  for (const auto& make : {needle_heatmaps, latency_figures, memory_figures})
    for (const Figure& f : make(files)) {
      const fs::path path = fs::path(dir) / f.file_name;
      write_file(path, f.svg);
      written.push_back(path.string());
    }
  for (const char* task : {"ruler", "niah"}) {
    if (!has_task(files, task)) continue;
    for (const auto& [format, ext] : {std::pair{ReportFormat::markdown, ".md"}, std::pair{ReportFormat::latex, ".tex"},
                                      std::pair{ReportFormat::csv, ".csv"}}) {
      ReportOptions opts;
      opts.format = format;
      opts.metric = task;
      const fs::path path = fs::path(dir) / (std::string(task) + ext);
      write_file(path, render_report(files, opts));
      written.push_back(path.string());
    }
  }
  return written;
}

}  // namespace attnbench
