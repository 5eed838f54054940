#pragma once
// How exports name their outputs. By site (the default): the site's own name, e.g. hidden_states.3.npy,
// blocks.0.attn.hook_pattern.npy. By layer (`--by layer`, the names the original Python tools use):
// hidden_states.{k} becomes `embedding` for k = 0 and `layer_{k-1}` otherwise, i.e. layer_N = hidden_states.{N+1}
// = the output of block N, except for the last one, layer_{L-1} = hidden_states.{L}, which is HF's output of the
// final norm (ln_final applied to block L-1's output), not of block L-1; other sites keep their own names.
#include <string>
#include <vector>

namespace actcap {

enum class OutputNaming { Site, Layer };
OutputNaming parse_output_naming(const std::string& name);  // "site" | "layer"; throws naming --by

// "embedding" for hidden_states.0, "layer_{k-1}" for hidden_states.{k}, else the site itself.
std::string layer_name_of_site(const std::string& site);
std::string output_name(const std::string& site, OutputNaming naming);

// The sites hidden_states.0 .. hidden_states.{K-1} present in `sites`, in order (empty without hidden_states.0).
std::vector<std::string> hidden_state_chain(const std::vector<std::string>& sites);

}  // namespace actcap
