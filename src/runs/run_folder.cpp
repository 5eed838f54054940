#include "runs/run_folder.h"

#include <cstdint>
#include <fcntl.h>
#include <sys/file.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/utc_time.h"
#include "runs/dataset_snapshot.h"

namespace actcap::runs {
namespace {

namespace fs = std::filesystem;

void check_run_id(const std::string& id) {
  const bool valid = !id.empty() && id.front() != '.' && id.size() <= 200 &&
                     id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
                         std::string::npos;
  if (!valid) fail("--run-id must be letters, digits, '.', '_' or '-' (not starting with '.'), got \"{}\"", id);
}

nlohmann::json text_or_null(const std::string& text) { return text.empty() ? nlohmann::json() : nlohmann::json(text); }

// Removes the temporary folder unless the run was renamed into place.
struct TemporaryFolder {
  fs::path path;
  bool kept = false;
  ~TemporaryFolder() {
    std::error_code ignored;
    if (!kept) fs::remove_all(path, ignored);
  }
};

}  // namespace

std::string init_run(const RunInit& init) {
  const nlohmann::ordered_json snapshot = snapshot_dataset(init.prompts_dir, init.samples_dir);
  const std::string dataset_sha256 = snapshot["dataset_sha256"].get<std::string>();
  const std::string id = init.run_id.empty() ? "run_" + utc_date_compact() + "_" + dataset_sha256.substr(0, 8) : init.run_id;
  check_run_id(id);
  const fs::path root(init.runs_root), final_dir = root / id;
  if (fs::exists(final_dir)) fail("{}: already exists; a run is never overwritten (choose another --run-id)", final_dir.string());
  std::error_code error;
  fs::create_directories(root, error);
  if (error) fail("{}: cannot create: {}", root.string(), error.message());

  TemporaryFolder temp{root / ("." + id + ".tmp-" + std::to_string(::getpid()))};
  fs::create_directory(temp.path, error);
  if (error) fail("{}: cannot create: {}", temp.path.string(), error.message());
  for (const char* sub : {kCheckpointsDir, kActivationsDir, kLogsDir})
    if (fs::create_directory(temp.path / sub, error); error)
      fail("{}: cannot create: {}", (temp.path / sub).string(), error.message());
  const std::string snapshot_text = snapshot.dump(2) + "\n";
  write_file_atomic((temp.path / kSnapshotFile).string(), snapshot_text);
  write_file_atomic((temp.path / kRotationsFile).string(), "");
  nlohmann::ordered_json manifest = {
      {"run_version", 1},
      {"run_id", id},
      {"created", utc_timestamp()},
      {"tool", init.tool},
      {"command_line", init.command_line},
      {"prompts_dir", fs::weakly_canonical(fs::absolute(init.prompts_dir)).string()},
      {"samples_dir", fs::weakly_canonical(fs::absolute(init.samples_dir)).string()},
      {"tokenizer", {{"name", text_or_null(init.tokenizer_name)}, {"version", text_or_null(init.tokenizer_version)}}},
      {"teacher", {{"commit", text_or_null(init.teacher_commit)}}},
      {"student", {{"commit", text_or_null(init.student_commit)}}},
      {"dataset_snapshot", {{"file", kSnapshotFile},
                            {"sha256", sha256_hex(snapshot_text.data(), snapshot_text.size())},
                            {"dataset_sha256", dataset_sha256}}},
      {"files", {{"rotations", kRotationsFile}, {"metrics", kMetricsFile}, {"activations", kActivationsDir},
                 {"checkpoints", kCheckpointsDir}, {"logs", kLogsDir}, {"report", kReportDir}}}};
  write_file_atomic((temp.path / kManifestFile).string(), manifest.dump(2) + "\n");
  // RENAME_NOREPLACE: a run created meanwhile by someone else is refused, never replaced.
  if (::renameat2(AT_FDCWD, temp.path.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0)
    fail("{}: cannot create the run: {}", final_dir.string(), std::strerror(errno));
  temp.kept = true;
  return final_dir.string();
}

nlohmann::json read_run_manifest(const std::string& dir) {
  const fs::path path = fs::path(dir) / kManifestFile;
  if (!fs::is_directory(dir)) fail("{}: no such run folder (create one with `actcap run init`)", dir);
  if (!fs::exists(path)) fail("{}: not a run folder (no {}; create one with `actcap run init`)", dir, kManifestFile);
  nlohmann::json manifest = nlohmann::json::parse(read_file(path.string()), nullptr, false);
  if (!manifest.is_object() || !manifest.contains("run_version") || !manifest["run_version"].is_number_integer())
    fail("{}: not a run manifest (no run_version)", path.string());
  if (manifest["run_version"].get<int64_t>() != 1)
    fail("{}: run_version {} is not supported (this actcap reads 1)", path.string(), manifest["run_version"].dump());
  return manifest;
}

void append_lines(const std::string& path, std::FILE* lines) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot open for appending: {}", path, std::strerror(errno));
  auto failed = [&](const char* what) {
    const int e = errno;
    ::close(fd);  // also releases the lock
    fail("{}: {}: {}", path, what, std::strerror(e));
  };
  if (::flock(fd, LOCK_EX) != 0) failed("cannot lock");
  std::rewind(lines);
  std::vector<char> buffer(1 << 20);
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), lines)) > 0;)
    for (size_t done = 0; done < n;) {
      const ssize_t written = ::write(fd, buffer.data() + done, n - done);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) failed("append failed");
      done += size_t(written);
    }
  if (std::ferror(lines)) failed("cannot read back the lines to append");
  if (::fsync(fd) != 0) failed("fsync failed");
  ::close(fd);
}

}  // namespace actcap::runs
