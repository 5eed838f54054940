#pragma once
// The dataset ledger of a run (dataset_snapshot.json): the SHA-256 of every file under the prompts and samples
// folders, so that a run says exactly which data it was made from, and one hash over them all.
//
//   {"snapshot_version": 1,
//    "prompts": {"files": [{"path": "<relative to the prompts folder>", "bytes": n, "sha256": "<hex>"}, ...],
//                "sha256": "<hex>"},
//    "samples": {... the same for the samples folder ...},
//    "dataset_sha256": "<hex>"}
//
// Files: every regular file below the folder (recursively, symlinks to files followed), paths with '/' sorted
// bytewise. A group's "sha256" is the SHA-256 of its lines "<sha256>  <path>\n" in that order (what
// `sha256sum` prints); "dataset_sha256" is the SHA-256 of the prompts' lines, with paths prefixed "prompts/",
// then the samples' lines prefixed "samples/". The document holds no time and no folder names, so the same data
// gives the same bytes wherever and whenever it is snapshotted.
#include <nlohmann/json.hpp>
#include <string>

namespace actcap::runs {

// Throws actcap::Error naming the folder when it is missing, holds no file, or a path holds a newline.
nlohmann::ordered_json snapshot_dataset(const std::string& prompts_dir, const std::string& samples_dir);

}  // namespace actcap::runs
