// actcap chat-template: renders a chat template for a list of messages and prints the text exactly (no newline
// added), to see what `--chat` feeds the model.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/command.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "io/hub.h"
#include "tokenizer/chat_template.h"

namespace actcap::cli {

namespace {

struct ChatTemplateOptions {
  std::string template_file, tokenizer_config, messages_file, bos, eos;
  bool add_generation_prompt = false;
};

nlohmann::ordered_json read_json(const std::string& path) {
  std::string text = read_file(path);
  try {
    return nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
}

// A special token in tokenizer_config.json is a string or an AddedToken object {"content": ...}.
std::optional<std::string> special_token(const nlohmann::ordered_json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  return std::nullopt;
}

void run(const ChatTemplateOptions& options) {
  std::string source;
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (!options.tokenizer_config.empty()) {
    auto config = read_json(options.tokenizer_config);
    auto it = config.find("chat_template");
    if (it == config.end() || it->is_null()) fail("{}: has no chat_template", options.tokenizer_config);
    if (it->is_string()) {
      source = it->get<std::string>();
    } else if (it->is_array()) {
      // Named templates: [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
      for (const auto& named : *it)
        if (named.value("name", "") == "default" && named.contains("template")) source = named["template"].get<std::string>();
      if (source.empty()) fail("{}: chat_template has no template named \"default\"", options.tokenizer_config);
    } else {
      fail("{}: chat_template must be a string or a list of named templates", options.tokenizer_config);
    }
    for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"})
      if (auto token = special_token(config, key)) context[key] = *token;
  } else {
    source = read_file(options.template_file);
  }
  if (!options.bos.empty()) context["bos_token"] = options.bos;
  if (!options.eos.empty()) context["eos_token"] = options.eos;

  auto input = read_json(options.messages_file);
  nlohmann::ordered_json messages;
  if (input.is_array()) {
    messages = input;
  } else if (input.is_object() && input.contains("messages")) {
    for (const auto& [key, value] : input.items()) {
      if (key == "messages") {
        messages = value;
      } else if (key != "add_generation_prompt") {
        context[key] = value;
      }
    }
  } else {
    fail("{}: expected a JSON list of messages, or an object with \"messages\"", options.messages_file);
  }
  std::string text;
  try {
    text = render_chat_template(source, messages, options.add_generation_prompt, context);
  } catch (const Error& e) {
    fail("{}: {}", options.tokenizer_config.empty() ? options.template_file : options.tokenizer_config, e.what());
  }
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    fail("chat-template: could not write the rendered text to standard output");
}

CommandRegistration registration(
    "chat-template", "render a chat template for a list of messages and print the exact text", [](CLI::App& command) {
      auto options = std::make_shared<ChatTemplateOptions>();
      auto* template_file = command.add_option("--template-file", options->template_file, "Jinja chat template file")
                                ->check(CLI::ExistingFile);
      auto* config = command
                         .add_option("--tokenizer-config", options->tokenizer_config,
                                     "tokenizer_config.json (or a model folder, or a hub model org/name[@revision]) "
                                     "to take chat_template, bos_token and eos_token from");
      template_file->excludes(config);
      command
          .add_option("--messages-file", options->messages_file,
                      "JSON list of {\"role\", \"content\"} messages, or an object with \"messages\" and further "
                      "template variables (tools, documents, enable_thinking, ...)")
          ->required()
          ->check(CLI::ExistingFile);
      command.add_flag("--add-generation-prompt", options->add_generation_prompt,
                       "End with the header of the assistant's turn");
      command.add_option("--bos", options->bos, "bos_token for the template");
      command.add_option("--eos", options->eos, "eos_token for the template");
      command.callback([options] {
        if (options->template_file.empty() && options->tokenizer_config.empty())
          fail("chat-template: give --template-file or --tokenizer-config");
        if (!options->tokenizer_config.empty() && !std::filesystem::is_regular_file(options->tokenizer_config))
          options->tokenizer_config =
              (std::filesystem::path(resolve_model(options->tokenizer_config).dir) / "tokenizer_config.json").string();
        run(*options);
      });
    });

}  // namespace

}  // namespace actcap::cli
