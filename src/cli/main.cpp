// actcap: capture the internal activations of Hugging Face causal language models.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/suggest.h"

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

namespace {

// The names a command can be called by, for "did you mean".
std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

// The command a user's leading words name ("export npy" -> that subcommand); stops at the first option.
// Fails on a word that is no command of its parent, suggesting the nearest.
CLI::App* named_command(CLI::App& app, int argc, char** argv) {
  CLI::App* command = &app;
  for (int i = 1; i < argc && argv[i][0] != '-'; ++i) {
    std::vector<std::string> names = subcommand_names(*command);
    if (names.empty()) break;
    std::string word = argv[i];
    if (std::find(names.begin(), names.end(), word) == names.end()) {
      std::string prefix = command == &app ? "" : command->get_name() + " ";
      if (auto near = actcap::nearest_name(word, names))
        actcap::fail("unknown command {}{} (did you mean {}{}?)", prefix, word, prefix, *near);
      actcap::fail("unknown command {}{} (see actcap {}--help)", prefix, word, prefix);
    }
    command = command->get_subcommand(word);
  }
  return command;
}

// The deepest command the parser had reached.
const CLI::App* parsed_command(const CLI::App& app) {
  const CLI::App* command = &app;
  while (!command->get_subcommands().empty()) command = command->get_subcommands().front();
  return command;
}

std::string command_path(const CLI::App* command) {
  std::string path;
  for (; command != nullptr && command->get_parent() != nullptr; command = command->get_parent())
    path = command->get_name() + (path.empty() ? "" : " " + path);
  return path.empty() ? "actcap" : "actcap " + path;
}

// A one-line message for a command-line mistake, with the nearest option for an unknown one:
// "capture: unknown option --max-tokens (did you mean --max-new-tokens?)".
std::string parse_error_message(const CLI::App& app, const CLI::ParseError& error) {
  const CLI::App* command = parsed_command(app);
  const std::string path = command_path(command);
  const std::string name = command == &app ? "" : path.substr(std::string("actcap ").size()) + ": ";
  if (dynamic_cast<const CLI::ExtrasError*>(&error)) {
    std::vector<std::string> extras = app.remaining(true);
    std::string first = extras.empty() ? "" : extras.front();
    if (first.rfind("-", 0) == 0) {
      std::string option = first.substr(0, first.find('='));
      std::vector<std::string> options;
      for (const CLI::Option* known : command->get_options())
        for (const std::string& long_name : known->get_lnames()) options.push_back("--" + long_name);
      if (auto near = actcap::nearest_name(option, options))
        return fmt::format("{}unknown option {} (did you mean {}?)", name, option, *near);
      return fmt::format("{}unknown option {} (see {} --help)", name, option, path);
    }
    if (!first.empty()) return fmt::format("{}unexpected argument \"{}\" (see {} --help)", name, first, path);
  }
  return fmt::format("{}{} (see {} --help)", name, error.what(), path);
}

}  // namespace

int main(int argc, char** argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    if (i) line += ' ';
    line += argv[i];
  }
  actcap::cli::command_line_storage() = line;

  CLI::App app{"actcap: capture the internal activations of Hugging Face causal language models", "actcap"};
  app.set_version_flag("--version", std::string(ACTCAP_VERSION) + " (" + ACTCAP_GIT_DESCRIBE + ")");
  app.require_subcommand(1);
  app.footer("\nRun `actcap COMMAND --help` for a command's options and examples; start with `actcap capture --help`.");
  actcap::cli::add_registered_commands(app);
  try {
    CLI::App* command = nullptr;
    try {
      command = named_command(app, argc, argv);
    } catch (const actcap::Error& e) {
      std::fprintf(stderr, "actcap: error: %s\n", e.what());
      return 2;
    }
    // Without a command (`actcap`, `actcap export`): the list of commands, not an error.
    int depth = 0;
    for (const CLI::App* c = command; c != &app; c = c->get_parent()) ++depth;
    if (!subcommand_names(*command).empty() && argc == 1 + depth) {
      std::printf("%s", command->help().c_str());
      return 0;
    }
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "actcap: error: %s\n", parse_error_message(app, e).c_str());
    return 2;
  } catch (const actcap::Error& e) {
    std::fprintf(stderr, "actcap: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "actcap: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
