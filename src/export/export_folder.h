#pragma once
// Exports are written into a temporary folder next to their target, OUT.tmp-<pid>, and renamed to OUT only when
// every file is complete, so a killed or failed export (a full disk, a bad value) never leaves a folder under the
// real name. OUT/actcap_export.json, written last, names the command and the files. A rerun removes the
// temporaries left by exports whose process is gone. OUT may be absent, an empty folder or an earlier actcap
// export (which the new one replaces); anything else is an error, so an export never mixes with, or deletes,
// files it did not write.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace actcap {

inline constexpr std::string_view kExportMarkerFile = "actcap_export.json";

class ExportFolder {
 public:
  // Checks OUT, removes stale temporaries and creates OUT.tmp-<pid>. Throws actcap::Error naming OUT.
  explicit ExportFolder(const std::string& out);
  ~ExportFolder();  // removes the temporary folder unless committed
  ExportFolder(const ExportFolder&) = delete;
  ExportFolder& operator=(const ExportFolder&) = delete;

  const std::string& out() const { return out_; }
  const std::string& temporary() const { return temporary_; }
  std::string path(std::string_view name) const;  // a file inside the temporary folder

  // Writes actcap_export.json (`description` plus "files": every file written, sorted) and renames the folder
  // into place, replacing an earlier export.
  void commit(nlohmann::json description);

 private:
  std::string out_, temporary_;
  bool committed_ = false;
};

// Removes PATH.tmp-<pid> and PATH.old-<pid> (files or folders) whose process no longer runs.
void remove_stale_temporaries(const std::string& path);

}  // namespace actcap
