// actcap run init: a run folder (runs/<id>/) with its manifest, dataset ledger, empty rotation ledger and the
// folders that captures, rotations, metrics and reports fill (runs/run_folder.h).
#include <cstdio>

#include "cli/command.h"
#include "runs/run_folder.h"

namespace actcap::cli {
namespace {

constexpr const char* kFooter = R"(
Creates RUNS_ROOT/<id>/: manifest.json, dataset_snapshot.json (SHA-256 of every file under --prompts-dir and
--samples-dir, paths sorted, and one hash over all), rotations.jsonl (empty), checkpoints/ activations/ logs/.
The default id is run_<UTC date YYYYMMDD>_<first 8 hex digits of the dataset hash>. An existing run is never
replaced. Then: actcap capture --run RUN ..., actcap rotation --run RUN ..., actcap metrics --run RUN ...,
actcap report --run RUN.
)";

void setup(CLI::App& command) {
  static runs::RunInit init;
  command.footer(kFooter);
  command.add_option("--runs-root", init.runs_root, "the folder that holds the runs (e.g. runs)")->required();
  command.add_option("--prompts-dir", init.prompts_dir, "the prompt/style files to snapshot")->required();
  command.add_option("--samples-dir", init.samples_dir, "the sample files to snapshot")->required();
  command.add_option("--run-id", init.run_id, "the run's name (default run_<YYYYMMDD>_<dataset hash>)");
  command.add_option("--tokenizer-name", init.tokenizer_name, "recorded in the manifest");
  command.add_option("--tokenizer-version", init.tokenizer_version, "recorded in the manifest");
  command.add_option("--teacher-commit", init.teacher_commit, "recorded in the manifest");
  command.add_option("--student-commit", init.student_commit, "recorded in the manifest");
  command.callback([] {
    init.command_line = command_line();
    init.tool = {{"name", "actcap"}, {"version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")"}};
    std::printf("%s\n", runs::init_run(init).c_str());
  });
}

const CommandRegistration registration("run init", "create a run folder with its manifest and dataset ledger", setup);

}  // namespace
}  // namespace actcap::cli
