#pragma once
// Per-layer figures of per-site numbers: sites are grouped by kind (blocks.3.hook_resid_post is the kind
// hook_resid_post at layer 3; hidden_states.3 is the kind hidden_states at layer 3, the input of block 3) and each
// kind becomes one line over the layers. Shared by `compare --plot` and `stats --plot`.
#include <optional>
#include <string>
#include <vector>

#include "analysis/plot.h"

namespace actcap {

struct SiteLayer {
  std::string kind;
  int layer = 0;
};

// The kind and layer of blocks.K.* and hidden_states.K; nullopt for sites outside the layers (hook_embed,
// ln_final.hook_normalized, logits), which per-layer figures leave out.
std::optional<SiteLayer> site_layer(const std::string& site);

// A line chart of values[i] (belonging to sites[i]) over the layers (integer ticks), one series per site kind in
// order of first appearance; a kind without a value at some layer has a gap there. With `log_if_wide`, y is
// log-scaled when the plotted positive values span more than two decades.
plot::Panel layer_panel(const std::string& title, const std::string& y_label, const std::vector<std::string>& sites,
                        const std::vector<double>& values, bool log_if_wide = false);

// Checks a --plot FILE before any work: a .png or .svg name in an existing folder; else an actcap::Error.
void check_figure_path(const std::string& path);

// Throws actcap::Error naming `path` when no panel of `figure` has a line (none of the sites belongs to a layer),
// so that nothing is written rather than an empty figure.
void check_something_to_draw(const plot::Figure& figure, const std::string& path);

}  // namespace actcap
