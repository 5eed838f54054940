#include "runs/capture_in_run.h"

#include <filesystem>

#include "capture/capture_job.h"
#include "core/error.h"
#include "runs/run_folder.h"

namespace actcap::runs {

void place_capture_in_run(CaptureJob& job, const std::string& run_dir) {
  namespace fs = std::filesystem;
  read_run_manifest(run_dir);
  const fs::path activations = fs::path(run_dir) / kActivationsDir;
  if (!job.out.empty()) {
    if (job.out.find('/') != std::string::npos || job.out == "." || job.out == "..")
      fail("--out {}: with --run, --out names the store inside {} (a plain name, no folders)", job.out,
           activations.string());
    job.out = (activations / job.out).string();
  } else if (job.models.size() == 1) {
    fs::path model(job.models.front());  // as given: a hub name "org/name@rev" gives "name@rev"
    if (model.filename().empty()) model = model.parent_path();
    job.out = (activations / model.filename()).string();
  } else {
    job.out = activations.string();  // run_capture adds each model's folder name
  }
}

}  // namespace actcap::runs
