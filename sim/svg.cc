#include "sim/svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace paci {
namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* color(ActionKind k) {
  switch (k) {
    case ActionKind::F: return "#4c78a8";
    case ActionKind::B: return "#54a24b";
    case ActionKind::I: return "#72b7b2";
    case ActionKind::W: return "#eeca3b";
    case ActionKind::OPT: return "#e45756";
    case ActionKind::FB: return "#b279a2";
  }
  return "#888";
}

// A tick step of 1, 2 or 5 times a power of ten giving about `n` ticks over `span`.
double nice_step(double span, int n) {
  double raw = span / n;
  double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

std::string time_label(double t, double step) {
  if (step >= 1) return fmt::format("{:g} s", t);
  if (step >= 1e-3) return fmt::format("{:g} ms", std::round(t * 1e6) / 1e3);
  return fmt::format("{:g} us", std::round(t * 1e9) / 1e3);
}

}  // namespace

std::string timeline_svg(const std::vector<SvgPanel>& panels, const SvgOptions& o) {
  // Common time window: from 0 to the latest end, cut so at most max_actions are drawn.
  double t_end = 0;
  std::vector<double> starts;
  for (const auto& p : panels)
    for (const auto& a : p.trace->actions) {
      t_end = std::max(t_end, a.end);
      starts.push_back(a.start);
    }
  bool cut = false;
  if (starts.size() > o.max_actions) {
    std::nth_element(starts.begin(), starts.begin() + o.max_actions, starts.end());
    t_end = starts[o.max_actions];
    cut = true;
  }
  if (!(t_end > 0)) t_end = 1;
  const double left = 90, right = 20, top = 40, scale = o.width / t_end, rh = o.row_height;
  const bool labels = starts.size() <= 20000;
  double height = top;
  for (const auto& p : panels) height += 24 + p.trace->spec.devices * rh + 12;
  height += 40;
  fmt::memory_buffer out;
  auto put = [&](auto&&... args) { fmt::format_to(std::back_inserter(out), args...); };
  put("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  put("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n",
      left + o.width + right, height);
  put("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  // Legend.
  double lx = left;
  for (auto [k, name] : {std::pair{ActionKind::F, "F forward"}, {ActionKind::B, "B backward"},
                         {ActionKind::I, "I input grad"}, {ActionKind::W, "W weight grad"},
                         {ActionKind::FB, "F&amp;B overlapped"}, {ActionKind::OPT, "optimizer step"}}) {
    put("<rect x=\"{:.1f}\" y=\"12\" width=\"12\" height=\"12\" fill=\"{}\"/>", lx, color(k));
    put("<text x=\"{:.1f}\" y=\"22\">{}</text>\n", lx + 16, name);
    lx += 110;
  }
  if (cut) put("<text x=\"{:.1f}\" y=\"22\" fill=\"#b00\">first {} of the run shown ({} actions at most)</text>\n",
               lx + 10, time_label(t_end, nice_step(t_end, 8)), o.max_actions);
  double y = top;
  for (const auto& p : panels) {
    const Trace& t = *p.trace;
    put("<text x=\"4\" y=\"{:.1f}\" font-weight=\"bold\">{}</text>\n", y + 15, esc(p.title));
    y += 22;
    for (int d = 0; d < t.spec.devices; ++d) {
      double ry = y + d * rh;
      put("<text x=\"4\" y=\"{:.1f}\">device {}</text>", ry + rh * 0.75, d);
      put("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"#f3f3f3\"/>\n", left, ry,
          o.width, rh - 2);
    }
    std::vector<const TraceAction*> opts;
    for (const auto& a : t.actions) {
      if (a.start > t_end) continue;
      if (a.action.kind == ActionKind::OPT) {
        opts.push_back(&a);
        continue;
      }
      double x = left + a.start * scale, w = std::max(0.5, (std::min(a.end, t_end) - a.start) * scale);
      double ry = y + a.device * rh;
      put("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\" stroke=\"white\" "
          "stroke-width=\"0.3\">",
          x, ry, w, rh - 2, color(a.action.kind));
      if (labels)
        put("<title>{} on device {}: {:.6g}..{:.6g} s, weight version {}</title>", to_string(a.action),
            a.device, a.start, a.end, a.version);
      put("</rect>\n");
      if (labels && w >= 7 * (std::to_string(a.action.mb).size() + 1))
        put("<text x=\"{:.2f}\" y=\"{:.1f}\" font-size=\"9\" fill=\"{}\" text-anchor=\"middle\">{}</text>\n",
            x + w / 2, ry + rh * 0.68, a.action.kind == ActionKind::W ? "#333" : "white", a.action.mb);
    }
    for (const TraceAction* a : opts) {
      double x = left + a->start * scale, w = std::max(2.0, (a->end - a->start) * scale);
      put("<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{:.1f}\" fill=\"{}\">"
          "<title>{} (update {}) on device {} at {:.6g} s</title></rect>\n",
          x - (a->end > a->start ? 0 : 1), y + a->device * rh - 1, w, rh, color(ActionKind::OPT),
          to_string(a->action), a->version, a->device, a->start);
    }
    y += t.spec.devices * rh + 12;
  }
  // Time axis.
  double step = nice_step(t_end, 10);
  put("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>\n", left, y, left + o.width, y);
  for (double tk = 0; tk <= t_end * (1 + 1e-9); tk += step) {
    double x = left + tk * scale;
    put("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>", x, y, x, y + 5);
    put("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", x, y + 18, time_label(tk, step));
  }
  put("</svg>\n");
  return fmt::to_string(out);
}

}  // namespace paci
