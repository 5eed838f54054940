#pragma once
// Subcommands register themselves: each cli/<name>.cpp defines a static CommandRegistration whose setup
// function adds its options to the CLI11 subcommand it is given and sets its callback.
// A path with a space ("export npy") nests under a parent command created on demand.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace actcap::cli {

using CommandSetup = std::function<void(CLI::App& command)>;

struct CommandRegistration {
  CommandRegistration(std::string path, std::string description, CommandSetup setup);
};

// Adds every registered command to `app` (called once by main).
void add_registered_commands(CLI::App& app);

// The command line as the user typed it, for provenance in manifests.
const std::string& command_line();
std::string& command_line_storage();  // set once by main

}  // namespace actcap::cli
