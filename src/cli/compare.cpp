// actcap compare A [B]: per site, how far two captures are apart (analysis/compare.h): two stores, record by
// record, or two records (--record I --against J, of one store or of A and B). A table on stdout, --json FILE,
// --plot FILE.png|svg.
#include <filesystem>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "analysis/compare.h"
#include "analysis/compare_report.h"
#include "analysis/layer_series.h"
#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "export/export_folder.h"
#include "export/store_selection.h"

namespace actcap::cli {
namespace {

struct Options {
  std::string a, b;
  std::vector<std::string> sites;
  std::string records, record, against, json, plot;
  bool allow_different_tokens = false, no_verify = false;
};

// Record pairs: --record I [--against J], else the record numbers of --records (or all) that both stores hold.
std::vector<std::pair<int64_t, int64_t>> record_pairs(const Options& options, const StoreReader& a, const StoreReader& b) {
  if (!options.record.empty()) {
    const int64_t i = parse_record_number(options.record, "--record");
    const int64_t j = options.against.empty() ? i : parse_record_number(options.against, "--against");
    select_records(a, std::to_string(i), "--record");  // each fails naming its store when it lacks the record
    select_records(b, std::to_string(j), options.against.empty() ? "--record" : "--against");
    return {{i, j}};
  }
  const std::string spec = options.records.empty() ? "all" : options.records;
  const std::vector<int64_t> in_a = select_records(a, spec, "--records"), in_b = select_records(b, spec, "--records");
  const std::set<int64_t> in_b_set(in_b.begin(), in_b.end());
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t r : in_a)
    if (in_b_set.count(r)) pairs.emplace_back(r, r);
  if (pairs.size() != in_a.size() || pairs.size() != in_b.size())
    fail("{} holds {} and {} holds {}: compare the same records (--records LIST) or two (--record I --against J)", a.dir(),
         describe_records(a), b.dir(), describe_records(b));
  return pairs;
}

// Checked before any work, like --plot's.
void check_json_path(const std::string& path) {
  if (path.empty() || path == "-") return;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) fail("--json {}: the folder {} does not exist", path, parent.string());
}

void run(const Options& options) {
  if (!options.against.empty() && options.record.empty()) fail("--against J needs --record I (the record of A to compare)");
  if (!options.record.empty() && !options.records.empty()) fail("--record and --records exclude each other: give one");
  if (!options.plot.empty()) check_figure_path(options.plot);
  check_json_path(options.json);

  const StoreReadOptions read{.verify_shards = !options.no_verify};
  const auto a = std::make_unique<StoreReader>(options.a, read);
  // One store against itself (two of its records) is opened once.
  std::unique_ptr<StoreReader> b_reader;
  if (!options.b.empty() && !(std::filesystem::exists(options.b) && std::filesystem::equivalent(options.a, options.b)))
    b_reader = std::make_unique<StoreReader>(options.b, read);
  const StoreReader& b = b_reader ? *b_reader : *a;

  CompareOptions compare;
  if (!options.sites.empty()) compare.site_globs = options.sites;
  compare.pairs = record_pairs(options, *a, b);
  compare.allow_different_tokens = options.allow_different_tokens;
  const Comparison comparison = compare_stores(*a, b, compare);
  plot::Figure figure;
  if (!options.plot.empty()) {
    figure = comparison_figure(comparison);
    check_something_to_draw(figure, options.plot);  // before any output
  }

  if (options.json == "-") {
    fmt::print("{}\n", comparison_json(comparison).dump(2));
  } else {
    fmt::print("{}", comparison_table(comparison));
  }
  if (!options.json.empty() && options.json != "-") {
    remove_stale_temporaries(options.json);
    write_file_atomic(options.json, comparison_json(comparison).dump(2) + "\n");
  }
  if (!options.plot.empty()) {
    remove_stale_temporaries(options.plot);
    plot::write_figure(figure, options.plot);
  }
}

CommandRegistration registration(
    "compare", "per site and layer: cosine, relative L2 and max |diff| between two captures (or two records)",
    [](CLI::App& command) {
      auto options = std::make_shared<Options>();
      command.add_option("a", options->a, "capture store A (the reference: relative L2 divides by ||A||)")->required();
      command.add_option("b", options->b, "capture store B (default: A itself, with --record I --against J)");
      command.add_option("--sites", options->sites,
                         "sites to compare: globs over both stores' sites, space- or comma-separated (default all)")
          ->expected(1, -1)
          ->type_name("GLOB");
      command.add_option("--records", options->records, "records compared with the same record of B: 'all' (default) or 0,2,5-7")
          ->type_name("LIST");
      command.add_option("--record", options->record, "compare record I of A ...")->type_name("I");
      command.add_option("--against", options->against, "... with record J of B (or of A when B is not given)")->type_name("J");
      command.add_flag("--allow-different-tokens", options->allow_different_tokens,
                       "compare records whose tokens differ (rows in order, over the shorter record)");
      command.add_option("--json", options->json, "also write the comparison as JSON to FILE ('-': stdout, no table)")
          ->type_name("FILE");
      command.add_option("--plot", options->plot, "also draw cosine and relative L2 per layer to FILE.png or FILE.svg")
          ->type_name("FILE");
      command.add_flag("--no-verify", options->no_verify, "skip the SHA-256 check of the stores' shards");
      command.footer(
          "Per site: cos mean = mean over positions of cos(a, b); cos min = the smallest; cos flat = cosine of the\n"
          "flattened tensors; rel L2 = ||a - b|| / ||a||; max|diff| = max |a - b|; in double, over every compared\n"
          "row (a position: [d], or [heads, keys] for attention patterns) of every record pair. Records are paired by number and must hold the same tokens (then\n"
          "the positions both stored are compared); with --allow-different-tokens, rows are paired in order over\n"
          "the shorter record. Sites in one store only, or with rows of different shapes, are listed, not compared.\n"
          "Examples: actcap compare out/fp32 out/bf16 --sites 'hidden_states.*' --plot cmp.png\n"
          "          actcap compare out/demo --record 0 --against 1 --allow-different-tokens --json cmp.json");
      command.callback([options] { run(*options); });
    });

}  // namespace
}  // namespace actcap::cli
