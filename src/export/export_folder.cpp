#include "export/export_folder.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace actcap {

namespace fs = std::filesystem;

namespace {

bool process_alive(long pid) { return pid > 0 && (::kill(pid_t(pid), 0) == 0 || errno == EPERM); }

// "PATH" without trailing slashes; refuses names that cannot be renamed into (".", "/").
std::string folder_name(const std::string& out) {
  std::string trimmed = out;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const std::string name = fs::path(trimmed).filename().string();
  if (trimmed.empty() || name.empty() || name == "." || name == ".." || name == "/")
    fail("--out {}: give a folder name (the export is written next to it, then renamed to it)", out);
  return trimmed;
}

bool is_empty_folder(const fs::path& path) { return fs::is_directory(path) && fs::is_empty(path); }

}  // namespace

void remove_stale_temporaries(const std::string& path) {
  const fs::path target(path);
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::error_code error;
  if (!fs::is_directory(parent, error)) return;
  const std::string name = target.filename().string();
  for (const auto& entry : fs::directory_iterator(parent, error)) {
    const std::string other = entry.path().filename().string();
    for (const std::string& prefix : {name + ".tmp-", name + ".old-"}) {
      if (other.size() <= prefix.size() || other.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string pid = other.substr(prefix.size());
      if (!std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; }) || pid.size() > 9) continue;
      if (!process_alive(std::stol(pid))) fs::remove_all(entry.path(), error);
    }
  }
}

ExportFolder::ExportFolder(const std::string& out) : out_(folder_name(out)) {
  const fs::path target(out_);
  if (fs::exists(target) && !is_empty_folder(target) && !fs::exists(target / kExportMarkerFile))
    fail("{}: already exists and is not an actcap export (no {}): remove it or choose another --out", out_,
         kExportMarkerFile);
  remove_stale_temporaries(out_);
  temporary_ = out_ + ".tmp-" + std::to_string(::getpid());
  std::error_code error;
  fs::remove_all(temporary_, error);
  if (!target.parent_path().empty()) fs::create_directories(target.parent_path(), error);
  if (!fs::create_directory(temporary_, error)) fail("{}: cannot create: {}", temporary_, error.message());
}

ExportFolder::~ExportFolder() {
  if (committed_) return;
  std::error_code error;
  fs::remove_all(temporary_, error);
}

std::string ExportFolder::path(std::string_view name) const { return (fs::path(temporary_) / name).string(); }

void ExportFolder::commit(nlohmann::json description) {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(temporary_))
    if (entry.is_regular_file()) files.push_back(fs::relative(entry.path(), temporary_).string());
  std::sort(files.begin(), files.end());
  description["complete"] = true;
  description["files"] = files;
  write_file_atomic(path(kExportMarkerFile), description.dump(2) + "\n");

  const fs::path target(out_);
  std::error_code error;
  std::string previous;
  if (fs::exists(target)) {
    if (is_empty_folder(target)) {
      fs::remove(target, error);
    } else {  // an earlier export (checked by the constructor): set aside until the new one is in place
      previous = out_ + ".old-" + std::to_string(::getpid());
      fs::rename(target, previous, error);
      if (error) fail("{}: cannot replace the earlier export: {}", out_, error.message());
    }
  }
  fs::rename(temporary_, target, error);
  if (error) fail("{}: cannot rename {} into place: {}", out_, temporary_, error.message());
  committed_ = true;
  if (!previous.empty()) fs::remove_all(previous, error);
}

}  // namespace actcap
