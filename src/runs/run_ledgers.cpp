#include "runs/run_ledgers.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace actcap::runs {
namespace {

using nlohmann::json;

// One non-blank line of a JSON-lines file, as an object, with what its errors should name.
struct Entry {
  json value;
  std::string where;  // "file:line"
  int64_t line = 0;

  const json& key(const char* name) const {
    if (!value.contains(name)) fail("{}: no \"{}\"", where, name);
    return value[name];
  }
  std::string text(const char* name) const {
    const json& v = key(name);
    if (!v.is_string()) fail("{}: \"{}\" must be a string", where, name);
    return v.get<std::string>();
  }
  int64_t integer(const char* name) const {
    const json& v = key(name);
    if (!v.is_number_integer()) fail("{}: \"{}\" must be an integer", where, name);
    return v.get<int64_t>();
  }
  double number(const char* name) const {
    const json& v = key(name);
    if (!v.is_number()) fail("{}: \"{}\" must be a number", where, name);
    return v.get<double>();
  }
  std::optional<double> number_or_null(const char* name) const {
    if (key(name).is_null()) return std::nullopt;
    return number(name);
  }
  std::vector<double> numbers(const char* name) const {
    const json& v = key(name);
    if (!v.is_array()) fail("{}: \"{}\" must be an array of numbers", where, name);
    std::vector<double> out;
    for (const json& x : v) {
      if (!x.is_number()) fail("{}: \"{}\" must be an array of numbers", where, name);
      out.push_back(x.get<double>());
    }
    return out;
  }
  Entry object(const char* name) const {
    const json& v = key(name);
    if (!v.is_object()) fail("{}: \"{}\" must be an object", where, name);
    return {v, where + " \"" + name + "\"", line};
  }
};

std::vector<Entry> read_json_lines(const std::string& path) {
  std::vector<Entry> entries;
  if (!std::filesystem::exists(path)) return entries;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    Entry entry{json::parse(text, nullptr, false), path + ":" + std::to_string(number), number};
    if (!entry.value.is_object()) fail("{}: not a JSON object (a torn or edited line?)", entry.where);
    entries.push_back(std::move(entry));
  }
  return entries;
}

RotationLine rotation_line(const Entry& entry) {
  if (entry.integer("ledger_version") != 1) fail("{}: ledger_version {} is not supported (this actcap reads 1)", entry.where, entry.key("ledger_version").dump());
  RotationLine r;
  r.line = entry.line;
  r.created = entry.text("created");
  r.site = entry.text("site");
  r.components = entry.integer("components");
  r.tokens = entry.integer("tokens");
  const Entry student = entry.object("student"), teacher = entry.object("teacher"), transport = entry.object("transport");
  r.student_store = student.text("store");
  r.teacher_store = teacher.text("store");
  r.student_manifest_sha256 = student.text("manifest_sha256");
  r.teacher_manifest_sha256 = teacher.text("manifest_sha256");
  r.student_width = student.integer("width");
  r.teacher_width = teacher.integer("width");
  r.cosine_before = entry.number_or_null("cosine_before");
  r.cosine_after = entry.number("cosine_after");
  r.singular_values = entry.numbers("singular_values");
  r.explained_variance_student = entry.number("explained_variance_student");
  r.explained_variance_teacher = entry.number("explained_variance_teacher");
  r.residual_error = entry.number("residual_error");
  r.transport_path = transport.text("safetensors");
  transport.text("pt");
  r.transport_sha256 = transport.text("sha256");
  if (int64_t(r.singular_values.size()) != r.components)
    fail("{}: {} singular values for {} components", entry.where, r.singular_values.size(), r.components);
  return r;
}

MetricsLine metrics_line(const Entry& entry) {
  if (entry.integer("metrics_version") != 1) fail("{}: metrics_version {} is not supported (this actcap reads 1)", entry.where, entry.key("metrics_version").dump());
  MetricsLine m;
  m.line = entry.line;
  m.created = entry.text("created");
  m.kind = entry.text("kind");
  const Entry a = entry.object("model_a"), b = entry.object("model_b");
  m.model_a = a.text("path");
  m.model_b = b.text("path");
  m.model_a_sha256 = a.text("weights_sha256");
  m.model_b_sha256 = b.text("weights_sha256");
  m.record = entry.integer("record");
  m.id = entry.text("id");
  m.tokens = entry.integer("tokens");
  m.site = entry.text("site");
  if (m.kind == "logits") {
    m.kl = entry.numbers("kl");
    m.surprisal_a = entry.numbers("surprisal_a");
    m.surprisal_b = entry.numbers("surprisal_b");
    if (int64_t(m.kl.size()) != m.tokens) fail("{}: {} KL values for {} tokens", entry.where, m.kl.size(), m.tokens);
  } else if (m.kind == "hidden_state") {
    m.layer = entry.integer("layer");
    m.cosine_mean = entry.number_or_null("cosine_mean");
    m.rms_a = entry.number("rms_a");
    m.rms_b = entry.number("rms_b");
    if (m.layer < 0) fail("{}: \"layer\" must be 0 or more", entry.where);
  } else {
    fail("{}: \"kind\" must be \"logits\" or \"hidden_state\", got \"{}\"", entry.where, m.kind);
  }
  return m;
}

}  // namespace

std::vector<RotationLine> read_rotation_ledger(const std::string& path) {
  std::vector<RotationLine> lines;
  for (const Entry& entry : read_json_lines(path)) lines.push_back(rotation_line(entry));
  return lines;
}

std::vector<MetricsLine> read_metrics(const std::string& path) {
  std::vector<MetricsLine> lines;
  for (const Entry& entry : read_json_lines(path)) lines.push_back(metrics_line(entry));
  return lines;
}

}  // namespace actcap::runs
