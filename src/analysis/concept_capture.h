#pragma once
// The capture behind `actcap concept`: each pair's two prompts become records 2i (positive) and 2i + 1
// (negative) of a normal capture store, labelled in records.jsonl with "meta": {"concept", "side", "pair",
// "persona", "prompt"}. The run folder holds prompts.jsonl (the records as given to the capture, kept so a
// --resume sees the same input) and store/.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "analysis/concept_prompts.h"
#include "capture/capture_job.h"

namespace actcap {

struct ConceptCaptureOptions {
  std::string model;         // folder or org/name[@revision]
  std::string concept_name;  // recorded in each record's meta
  std::string layers;        // blocks whose output is captured ("": all; as --layers)
  std::string positions = "last";  // last: the last prompt token only; mean: every prompt token (averaged later)
  bool use_chat_template = true;   // wrap each prompt as a user turn when the model has a chat template
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  bool resume = false, overwrite = false;
  std::string out;  // the run folder
  std::string command_line;
  nlohmann::json tool = nlohmann::json::object();
};

// Checks the options against the model (its config and tokenizer), writes <out>/prompts.jsonl and returns the
// job that captures hidden_states.(K+1), the output of each chosen block K, into <out>/store. Throws
// actcap::Error before writing anything when the store exists without --resume/--overwrite.
CaptureJob prepare_concept_capture(const ConceptCaptureOptions& options, const std::vector<ContrastPrompt>& pairs);

// A concept store named directly or through its run folder (DIR/store).
std::string concept_store_dir(const std::string& path);

}  // namespace actcap
