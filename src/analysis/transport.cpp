#include "analysis/transport.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <regex>

#include "analysis/procrustes.h"
#include "core/error.h"
#include "core/sha256.h"
#include "export/torch_export.h"
#include "io/safetensors.h"

namespace actcap {

namespace fs = std::filesystem;
using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

// A record's rows of `site` as [T_kept, width] in float64 (trailing dims flattened).
RowMatrix rows_of(const StoreReader& store, int64_t record, const std::string& site) {
  const Tensor values = store.read_f32(record, site);
  const int64_t rows = values.shape().empty() ? 1 : values.dim(0);
  const int64_t width = rows == 0 ? 0 : values.numel() / rows;
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(values.f32(), rows,
                                                                                                   width)
      .cast<double>();
}

// The width every record's rows of `site` share; throws naming the store otherwise.
int64_t site_width(const StoreReader& store, const std::string& site) {
  const auto& sites = store.sites();
  if (std::find(sites.begin(), sites.end(), site) == sites.end())
    fail("{}: the store has no site '{}' (it has {} sites, e.g. '{}')", store.dir(), site, sites.size(),
         sites.empty() ? "" : sites.front());
  for (const StoreReader::SiteInfo& info : store.site_infos()) {
    if (info.site != site) continue;
    int64_t width = 1;
    for (size_t i = 1; i < info.shape.size(); ++i) {
      if (info.shape[i] < 0)
        fail("{}: site '{}' has rows of different widths from record to record ({}): no transport between them",
             store.dir(), site, shape_string(info.shape));
      width *= info.shape[i];
    }
    return width;
  }
  fail("{}: site '{}' has no rows", store.dir(), site);
}

// Calls `visit(student_rows, teacher_rows)` for every record, in order.
void for_each_record(const StoreReader& student, const StoreReader& teacher, const std::string& site,
                     const std::function<void(const RowMatrix&, const RowMatrix&)>& visit) {
  for (const nlohmann::json& line : student.records()) {
    const int64_t record = line["record"].get<int64_t>();
    visit(rows_of(student, record, site), rows_of(teacher, record, site));
  }
}

double cosine(const Eigen::Ref<const Eigen::RowVectorXd>& a, const Eigen::Ref<const Eigen::RowVectorXd>& b) {
  const double norms = a.norm() * b.norm();
  return norms > 0 ? a.dot(b) / norms : 0.0;  // a zero vector is orthogonal to everything
}

}  // namespace

void check_paired_stores(const StoreReader& student, const StoreReader& teacher) {
  const auto &s = student.records(), &t = teacher.records();
  if (s.size() != t.size())
    fail("{}: {} records, but the student store {} has {}: the stores must capture the same inputs", teacher.dir(),
         t.size(), student.dir(), s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i]["token_ids"] != t[i]["token_ids"])
      fail("{}: record {} has other token ids than record {} of the student store {}", teacher.dir(), i, i,
           student.dir());
    if (s[i]["positions"] != t[i]["positions"])
      fail("{}: record {} stores other positions than record {} of the student store {}", teacher.dir(), i, i,
           student.dir());
  }
}

std::string transport_site_name(const std::string& layer) {
  static const std::regex seed_layer(R"(model\.layers\.(\d+))");
  std::smatch m;
  if (std::regex_match(layer, m, seed_layer)) return "hidden_states." + std::to_string(std::stoll(m[1]) + 1);
  return layer;
}

Transport estimate_transport(const StoreReader& student, const StoreReader& teacher, const std::string& site,
                             int64_t components) {
  Transport out;
  out.site = site;
  out.student_width = site_width(student, site);
  out.teacher_width = site_width(teacher, site);
  const int64_t smaller = std::min(out.student_width, out.teacher_width);
  out.components = components == 0 ? smaller : components;
  if (out.components < 1 || out.components > smaller)
    fail("--components {}: must be between 1 and the smaller width, {} (student {}, teacher {})", components,
         smaller, out.student_width, out.teacher_width);
  const Eigen::Index ds = out.student_width, dt = out.teacher_width;

  // Pass 1: the means.
  Eigen::RowVectorXd sum_s = Eigen::RowVectorXd::Zero(ds), sum_t = Eigen::RowVectorXd::Zero(dt);
  for_each_record(student, teacher, site, [&](const RowMatrix& s, const RowMatrix& t) {
    out.tokens += s.rows();
    sum_s += s.colwise().sum();
    sum_t += t.colwise().sum();
  });
  if (out.tokens < 2) fail("{}: site '{}' has {} stored rows: a transport needs at least 2", student.dir(), site, out.tokens);
  const double n = double(out.tokens);
  out.student_mean = (sum_s / n).transpose();
  out.teacher_mean = (sum_t / n).transpose();

  // Pass 2: centred covariances and cross-covariance; the cosine before (same widths only).
  Eigen::MatrixXd css = Eigen::MatrixXd::Zero(ds, ds), ctt = Eigen::MatrixXd::Zero(dt, dt);
  Eigen::MatrixXd cst = Eigen::MatrixXd::Zero(ds, dt);
  double cosine_sum = 0;
  for_each_record(student, teacher, site, [&](const RowMatrix& s, const RowMatrix& t) {
    const RowMatrix sc = s.rowwise() - out.student_mean.transpose();
    const RowMatrix tc = t.rowwise() - out.teacher_mean.transpose();
    css.selfadjointView<Eigen::Lower>().rankUpdate(sc.transpose());
    ctt.selfadjointView<Eigen::Lower>().rankUpdate(tc.transpose());
    cst.noalias() += sc.transpose() * tc;
    if (ds == dt)
      for (Eigen::Index i = 0; i < sc.rows(); ++i) cosine_sum += cosine(sc.row(i), tc.row(i));
  });
  css = css.selfadjointView<Eigen::Lower>();
  ctt = ctt.selfadjointView<Eigen::Lower>();
  css /= n, ctt /= n, cst /= n;
  if (ds == dt) out.cosine_before = cosine_sum / n;

  const PcaBasis ps = principal_axes(css, out.components), pt = principal_axes(ctt, out.components);
  out.student_basis = ps.basis;
  out.teacher_basis = pt.basis;
  out.explained_variance_student = ps.explained_variance;
  out.explained_variance_teacher = pt.explained_variance;
  const Procrustes procrustes = orthogonal_procrustes(ps.basis.transpose() * cst * pt.basis);
  out.rotation = procrustes.rotation;
  out.singular_values = procrustes.singular_values;

  // Pass 3: per-token cosine after, and the residual, in the reduced spaces.
  double cosine_after_sum = 0, residual_sq = 0, teacher_sq = 0;
  const Eigen::MatrixXd student_to_reduced_teacher = ps.basis * out.rotation;
  for_each_record(student, teacher, site, [&](const RowMatrix& s, const RowMatrix& t) {
    const RowMatrix mapped = (s.rowwise() - out.student_mean.transpose()) * student_to_reduced_teacher;
    const RowMatrix target = (t.rowwise() - out.teacher_mean.transpose()) * pt.basis;
    for (Eigen::Index i = 0; i < mapped.rows(); ++i) cosine_after_sum += cosine(mapped.row(i), target.row(i));
    residual_sq += (mapped - target).squaredNorm();
    teacher_sq += target.squaredNorm();
  });
  out.cosine_after = cosine_after_sum / n;
  out.residual_error = teacher_sq > 0 ? std::sqrt(residual_sq / teacher_sq) : 0.0;
  return out;
}

std::string store_manifest_sha256(const StoreReader& store) {
  const nlohmann::json& m = store.manifest();
  if (!m.contains("manifest_sha256") || !m["manifest_sha256"].is_string())
    fail("{}/manifest.json: no manifest_sha256 (a format_version 1 store: resume its capture to upgrade it)",
         store.dir());
  return m["manifest_sha256"].get<std::string>();
}

TransportFiles write_transport_files(const Transport& transport, const std::string& dir,
                                     const std::string& student_manifest_sha256,
                                     const std::string& teacher_manifest_sha256) {
  // Eigen's default storage is column-major: every tensor is copied row-major first.
  const std::vector<std::pair<std::string, RowMatrix>> tensors = {
      {"rotation", transport.rotation},
      {"student_basis", transport.student_basis},
      {"teacher_basis", transport.teacher_basis},
      {"student_mean", transport.student_mean.transpose()},
      {"teacher_mean", transport.teacher_mean.transpose()},
      {"singular_values", transport.singular_values.transpose()},
      {"linear_map", transport.linear_map()}};
  auto shape_of = [](const std::string& name, const RowMatrix& m) {
    return name.find("mean") != std::string::npos || name == "singular_values" ? Shape{m.cols()}
                                                                                : Shape{m.rows(), m.cols()};
  };
  fs::create_directories(dir);
  SafetensorsWriter writer;
  for (const auto& [name, m] : tensors) writer.add(name, DType::F64, shape_of(name, m), m.data());
  writer.set_metadata("format", "pt");
  writer.set_metadata("actcap", "transport");
  writer.set_metadata("site", transport.site);
  writer.set_metadata("components", std::to_string(transport.components));
  writer.set_metadata("student_manifest_sha256", student_manifest_sha256);
  writer.set_metadata("teacher_manifest_sha256", teacher_manifest_sha256);
  // Named once its hash is known; the staging name is this process's own (concurrent runs share folders).
  const std::string staging =
      (fs::path(dir) / (transport.site + ".safetensors.partial-" + std::to_string(::getpid()))).string();
  const SafetensorsWriter::Written written = writer.write(staging);
  const std::string stem = (fs::path(dir) / (transport.site + "-" + written.sha256.substr(0, 16))).string();
  TransportFiles files{stem + ".safetensors", stem + ".pt", written.sha256};
  std::error_code error;
  fs::rename(staging, files.safetensors, error);
  if (error) fail("{}: cannot rename to {}: {}", staging, files.safetensors, error.message());

  TorchArchive archive;
  PickleWriter& p = archive.pickle();
  p.mark();
  p.string("site").string(transport.site);
  p.string("components").integer(transport.components);
  for (const auto& [name, m] : tensors) {
    p.string(name);
    archive.tensor(TensorView{m.data(), DType::F64, shape_of(name, m)}, shape_of(name, m));
  }
  p.dict();
  archive.write(files.pt);
  return files;
}

nlohmann::ordered_json ledger_line(const Transport& transport, const StoreReader& student, const std::string& student_path,
                                   const StoreReader& teacher, const std::string& teacher_path,
                                   const TransportFiles& files, const std::string& created) {
  using ojson = nlohmann::ordered_json;
  ojson line;
  line["ledger_version"] = 1;
  line["created"] = created;
  line["site"] = transport.site;
  line["components"] = transport.components;
  line["student"] = {{"store", student_path}, {"manifest_sha256", store_manifest_sha256(student)},
                     {"width", transport.student_width}};
  line["teacher"] = {{"store", teacher_path}, {"manifest_sha256", store_manifest_sha256(teacher)},
                     {"width", transport.teacher_width}};
  line["tokens"] = transport.tokens;
  line["cosine_before"] = transport.cosine_before ? ojson(*transport.cosine_before) : ojson(nullptr);
  line["cosine_after"] = transport.cosine_after;
  line["singular_values"] =
      std::vector<double>(transport.singular_values.data(), transport.singular_values.data() + transport.singular_values.size());
  line["explained_variance_student"] = transport.explained_variance_student;
  line["explained_variance_teacher"] = transport.explained_variance_teacher;
  line["residual_error"] = transport.residual_error;
  line["transport"] = {{"safetensors", files.safetensors}, {"pt", files.pt}, {"sha256", files.sha256}};
  return line;
}

void append_ledger_line(const std::string& ledger_path, const nlohmann::ordered_json& line) {
  const std::string text = line.dump() + "\n";
  const fs::path parent = fs::path(ledger_path).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  const int fd = ::open(ledger_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot open the ledger: {}", ledger_path, std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::flock(fd, LOCK_EX) != 0) fail("{}: cannot lock the ledger: {}", ledger_path, std::strerror(errno));
  const off_t before = ::lseek(fd, 0, SEEK_END);
  const ssize_t n = ::write(fd, text.data(), text.size());
  if (n != ssize_t(text.size())) {
    const int write_errno = errno;
    const bool no_torn_line = n <= 0 || (before >= 0 && ::ftruncate(fd, before) == 0);
    fail("{}: short write to the ledger ({} of {} bytes): {}{}", ledger_path, n < 0 ? 0 : n, text.size(),
         std::strerror(write_errno), no_torn_line ? "" : " (its last line is torn)");
  }
  if (::fsync(fd) != 0) fail("{}: cannot fsync the ledger: {}", ledger_path, std::strerror(errno));
}

}  // namespace actcap
