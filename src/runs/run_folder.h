#pragma once
// A run folder (`actcap run init`): everything one distillation/alignment run produces, in one place.
//
//   runs/<id>/manifest.json          {"run_version": 1, "run_id", "created" (UTC), "tool", "command_line",
//                                     "prompts_dir", "samples_dir" (absolute), "tokenizer": {"name", "version"},
//                                     "teacher": {"commit"}, "student": {"commit"} (null when not given),
//                                     "dataset_snapshot": {"file", "sha256" (of the file), "dataset_sha256"},
//                                     "files": the names below}
//   runs/<id>/dataset_snapshot.json  the dataset ledger (dataset_snapshot.h)
//   runs/<id>/rotations.jsonl        the rotation ledger, empty at first (`actcap rotation --run`)
//   runs/<id>/metrics.jsonl          `actcap metrics --run` appends its lines (created on the first)
//   runs/<id>/checkpoints/ activations/ logs/   (`actcap capture --run` stores under activations/<name>)
//   runs/<id>/report/                `actcap report` writes report.md and its figures here
//
// The default run id is run_<UTC date YYYYMMDD>_<first 8 hex digits of dataset_sha256>: the same data on the same
// day names the same run (a second init is refused: give --run-id), other data or another day another one.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace actcap::runs {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kSnapshotFile = "dataset_snapshot.json";
inline constexpr const char* kRotationsFile = "rotations.jsonl";
inline constexpr const char* kMetricsFile = "metrics.jsonl";
inline constexpr const char* kActivationsDir = "activations";
inline constexpr const char* kCheckpointsDir = "checkpoints";
inline constexpr const char* kLogsDir = "logs";
inline constexpr const char* kReportDir = "report";

struct RunInit {
  std::string runs_root, prompts_dir, samples_dir;
  std::string run_id;  // empty: the default id above
  std::string tokenizer_name, tokenizer_version, teacher_commit, student_commit;  // empty: null in the manifest
  std::string command_line;
  nlohmann::json tool = nlohmann::json::object();
};

// Creates runs_root/<id> complete or not at all: built in a temporary folder beside it and renamed into place,
// refusing to replace anything already there. Returns the run's folder. Throws actcap::Error.
std::string init_run(const RunInit& init);

// The manifest of the run in `dir`; throws actcap::Error naming `dir` when it is not a run folder.
nlohmann::json read_run_manifest(const std::string& dir);

// Appends the whole contents of `lines` (read from its start) to `path`, holding an exclusive flock on it so that
// two commands appending at once never interleave, then fsyncs it. Called once a command's lines are all
// computed, so a command that fails appends nothing.
void append_lines(const std::string& path, std::FILE* lines);

}  // namespace actcap::runs
