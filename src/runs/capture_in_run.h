#pragma once
// `actcap capture --run runs/<id>`: the capture's store goes under the run's activations/ folder.
#include <string>

namespace actcap {

struct CaptureJob;

namespace runs {

// Points `job` at runs/<id>/activations/<name>: <name> is --out when given (a plain name, no folders), else the
// model's folder name; with several models, each goes to activations/[<--out>/]<model folder name> as usual.
// Throws actcap::Error when `run_dir` is not a run folder or --out is not a plain name.
void place_capture_in_run(CaptureJob& job, const std::string& run_dir);

}  // namespace runs
}  // namespace actcap
