#include "runtime/memory_report.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace nnjit::runtime {

namespace {

std::string name_of(const std::vector<std::string>& names, int v) {
  if (v >= 0 && static_cast<std::size_t>(v) < names.size() && !names[static_cast<std::size_t>(v)].empty())
    return names[static_cast<std::size_t>(v)];
  return "#" + std::to_string(v);
}

std::string fmt_bytes(std::size_t bytes) {
  const char* units[] = {"KiB", "MiB", "GiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double x = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (x >= 1024 && u < 2) {
    x /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, x < 10 ? "%.2f %s" : "%.1f %s", x, units[u]);
  return buf;
}

std::string ratio(std::size_t a, std::size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", b ? static_cast<double>(a) / static_cast<double>(b) : 0.0);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

MemoryReport make_memory_report(const MemoryPlan& plan, const std::vector<std::string>& names) {
  MemoryReport r;
  r.arena_bytes = plan.arena_bytes;
  r.naive_bytes = plan.naive_bytes;
  r.live_bound_bytes = plan.live_bound;
  r.peak_step = plan.peak_step;
  for (const ValuePlan& p : plan.values) {
    if (p.kind == ValueKind::Input) r.input_bytes += p.size;
    if (p.kind == ValueKind::Alias) ++r.concat_inputs_in_place;
  }
  for (const ScratchPlan& s : plan.scratch)
    if (s.size) {
      r.scratch_bytes += s.size;
      ++r.scratch_steps;
    }
  for (const InPlaceDecision& d : plan.inplace) {
    if (d.granted) {
      ++r.inplace_granted;
    } else {
      ++r.inplace_denied;
      r.denials.push_back({d.step, name_of(names, d.output), name_of(names, d.input), d.reason});
    }
  }
  if (const int s = plan.peak_step; s >= 0) {
    for (std::size_t v = 0; v < plan.values.size(); ++v) {
      const ValuePlan& p = plan.values[v];
      const bool arena = p.kind == ValueKind::Allocate || p.kind == ValueKind::InPlace || p.kind == ValueKind::Output;
      if (!arena || p.size == 0 || p.first_step < 0 || s < p.first_step || s > p.last_step) continue;
      MemoryReport::LiveValue lv{name_of(names, static_cast<int>(v)), p.size, p.offset, p.kind, {}};
      if (p.kind == ValueKind::InPlace && p.first_step == s) lv.in_place_of = name_of(names, p.donor);
      r.peak_values.push_back(std::move(lv));
    }
    if (static_cast<std::size_t>(s) < plan.scratch.size() && plan.scratch[static_cast<std::size_t>(s)].size) {
      const ScratchPlan& sp = plan.scratch[static_cast<std::size_t>(s)];
      r.peak_values.push_back({"scratch of step " + std::to_string(s), sp.size, sp.offset, ValueKind::Unused, {}});
    }
    std::stable_sort(r.peak_values.begin(), r.peak_values.end(),
                     [](const MemoryReport::LiveValue& a, const MemoryReport::LiveValue& b) {
                       return a.bytes != b.bytes ? a.bytes > b.bytes : a.offset < b.offset;
                     });
  }
  return r;
}

std::string MemoryReport::to_text() const {
  std::ostringstream o;
  o << "arena: " << fmt_bytes(arena_bytes) << "  (live-set bound " << fmt_bytes(live_bound_bytes) << ", arena/bound "
    << ratio(arena_bytes, live_bound_bytes) << "; no reuse " << fmt_bytes(naive_bytes) << ")\n";
  o << "graph inputs: " << fmt_bytes(input_bytes) << " (outside the arena)\n";
  o << "in place: " << inplace_granted << " granted, " << inplace_denied << " denied; " << concat_inputs_in_place
    << " Concat inputs computed into the Concat's output\n";
  if (scratch_steps) o << "scratch: " << scratch_steps << " steps, " << fmt_bytes(scratch_bytes) << " in all\n";
  if (weights_bytes_stored || weights_bytes_packed)
    o << "weights: " << fmt_bytes(weights_bytes_stored) << " stored, " << fmt_bytes(weights_bytes_packed)
      << " packed\n";
  if (peak_step >= 0) {
    o << "peak: step " << peak_step << ", " << peak_values.size() << " alive\n";
    std::size_t width = 0;
    for (const LiveValue& v : peak_values) width = std::max(width, v.name.size());
    for (const LiveValue& v : peak_values) {
      o << "  " << v.name << std::string(width - v.name.size() + 2, ' ') << fmt_bytes(v.bytes) << " @" << v.offset;
      if (v.kind != ValueKind::Unused) o << "  " << to_string(v.kind);
      if (!v.in_place_of.empty()) o << " (shares " << v.in_place_of << "'s bytes)";
      o << "\n";
    }
  }
  for (const Denial& d : denials)
    o << "in place denied: step " << d.step << ", " << d.output << " over " << d.input << ": " << d.reason << "\n";
  return o.str();
}

std::string MemoryReport::to_json() const {
  std::ostringstream o;
  o << "{\"arena_bytes\": " << arena_bytes << ", \"naive_bytes\": " << naive_bytes
    << ", \"live_bound_bytes\": " << live_bound_bytes << ", \"input_bytes\": " << input_bytes
    << ", \"scratch_bytes\": " << scratch_bytes << ", \"scratch_steps\": " << scratch_steps
    << ", \"inplace_granted\": " << inplace_granted << ", \"inplace_denied\": " << inplace_denied
    << ", \"concat_inputs_in_place\": " << concat_inputs_in_place
    << ", \"weights_bytes_stored\": " << weights_bytes_stored << ", \"weights_bytes_packed\": " << weights_bytes_packed
    << ", \"peak_step\": " << peak_step << ", \"peak_values\": [";
  for (std::size_t i = 0; i < peak_values.size(); ++i) {
    const LiveValue& v = peak_values[i];
    o << (i ? ", " : "") << "{\"name\": " << json_string(v.name) << ", \"bytes\": " << v.bytes
      << ", \"offset\": " << v.offset
      << ", \"kind\": " << json_string(v.kind == ValueKind::Unused ? "scratch" : to_string(v.kind));
    if (!v.in_place_of.empty()) o << ", \"in_place_of\": " << json_string(v.in_place_of);
    o << "}";
  }
  o << "], \"inplace_denials\": [";
  for (std::size_t i = 0; i < denials.size(); ++i) {
    const Denial& d = denials[i];
    o << (i ? ", " : "") << "{\"step\": " << d.step << ", \"output\": " << json_string(d.output)
      << ", \"input\": " << json_string(d.input) << ", \"reason\": " << json_string(d.reason) << "}";
  }
  o << "]}";
  return o.str();
}

}  // namespace nnjit::runtime
