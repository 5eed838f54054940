// actcap: capture the internal activations of Hugging Face causal language models.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "cli/command.h"
#include "core/error.h"

namespace actcap::cli {

namespace {
struct Registered {
  std::string path, description;
  CommandSetup setup;
};
std::vector<Registered>& registry() {
  static std::vector<Registered> commands;
  return commands;
}
}  // namespace

std::string& command_line_storage() {
  static std::string line;
  return line;
}

CommandRegistration::CommandRegistration(std::string path, std::string description, CommandSetup setup) {
  registry().push_back({std::move(path), std::move(description), std::move(setup)});
}

const std::string& command_line() { return command_line_storage(); }

void add_registered_commands(CLI::App& app) {
  std::map<std::string, CLI::App*> parents;
  auto sorted = registry();
  // Parents ("export") before children ("export npy").
  std::stable_sort(sorted.begin(), sorted.end(), [](const Registered& a, const Registered& b) {
    return std::count(a.path.begin(), a.path.end(), ' ') < std::count(b.path.begin(), b.path.end(), ' ');
  });
  for (const auto& r : sorted) {
    CLI::App* parent = &app;
    std::string name = r.path;
    if (auto space = r.path.rfind(' '); space != std::string::npos) {
      std::string parent_path = r.path.substr(0, space);
      name = r.path.substr(space + 1);
      auto it = parents.find(parent_path);
      if (it == parents.end()) {
        CLI::App* p = app.add_subcommand(parent_path, parent_path + " commands");
        p->require_subcommand(1);
        it = parents.emplace(parent_path, p).first;
      }
      parent = it->second;
    }
    CLI::App* command = parent->add_subcommand(name, r.description);
    parents[r.path] = command;
    r.setup(*command);
  }
}

}  // namespace actcap::cli

int main(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i) line += ' ';
    line += argv[i];
  }
  actcap::cli::command_line_storage() = line;

  CLI::App app{"actcap: capture the internal activations of Hugging Face causal language models"};
  app.set_version_flag("--version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")");
  app.require_subcommand(1);
  actcap::cli::add_registered_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const actcap::Error& e) {
    std::fprintf(stderr, "actcap: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "actcap: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
