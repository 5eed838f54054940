#include "analysis/concept_prompts.h"

#include <fstream>

#include "analysis/builtin_concepts.h"
#include "core/error.h"
#include "core/suggest.h"

namespace actcap {
namespace {

std::string text_field(const nlohmann::json& object, const char* key, const std::string& where) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string() || object[key].get<std::string>().empty())
    fail("{}: \"{}\" must be a non-empty string", where, key);
  return object[key].get<std::string>();
}

// The prompts of one file: non-blank lines, each plain text or a JSON string literal.
std::vector<std::string> read_prompt_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot open", path);
  std::vector<std::string> prompts;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line.front() == '"') {
      const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
      if (!parsed.is_string()) fail("{}:{}: a line starting with '\"' must be one JSON string", path, number);
      line = parsed.get<std::string>();
    }
    prompts.push_back(line);
  }
  if (in.bad()) fail("{}: read error", path);
  if (prompts.empty()) fail("{}: no prompts (one per line)", path);
  return prompts;
}

}  // namespace

std::vector<std::string> builtin_concept_names() {
  std::vector<std::string> names;
  for (const EmbeddedFile& file : builtin_concept_files()) names.push_back(file.name);
  return names;
}

ConceptDefinition builtin_concept(const std::string& name) {
  for (const EmbeddedFile& file : builtin_concept_files())
    if (name == file.name) return parse_concept(nlohmann::json::parse(file.contents), "built-in concept " + name);
  const std::vector<std::string> names = builtin_concept_names();
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  if (const auto nearest = nearest_name(name, names))
    fail("unknown concept \"{}\": did you mean \"{}\"? (built-in: {})", name, *nearest, known);
  fail("unknown concept \"{}\" (built-in: {}; or give --positive FILE --negative FILE)", name, known);
}

ConceptDefinition parse_concept(const nlohmann::json& document, const std::string& origin) {
  if (!document.is_object()) fail("{}: a concept must be a JSON object", origin);
  ConceptDefinition definition;
  definition.name = text_field(document, "name", origin);
  definition.description = text_field(document, "description", origin);
  if (!document.contains("personas") || !document["personas"].is_array() || document["personas"].empty())
    fail("{}: \"personas\" must be a non-empty list of {{\"positive\", \"negative\"}}", origin);
  if (!document.contains("prompts") || !document["prompts"].is_array() || document["prompts"].empty())
    fail("{}: \"prompts\" must be a non-empty list of strings", origin);
  for (size_t i = 0; i < document["personas"].size(); ++i) {
    const std::string where = origin + ": personas[" + std::to_string(i) + "]";
    definition.personas.push_back({text_field(document["personas"][i], "positive", where),
                                text_field(document["personas"][i], "negative", where)});
  }
  for (size_t i = 0; i < document["prompts"].size(); ++i) {
    const nlohmann::json& prompt = document["prompts"][i];
    if (!prompt.is_string() || prompt.get<std::string>().empty())
      fail("{}: prompts[{}] must be a non-empty string", origin, i);
    definition.prompts.push_back(prompt.get<std::string>());
  }
  return definition;
}

std::vector<ContrastPrompt> contrast_prompts(const ConceptDefinition& definition, int64_t max_pairs) {
  const int64_t personas = int64_t(definition.personas.size()), prompts = int64_t(definition.prompts.size());
  int64_t count = personas * prompts;
  if (max_pairs > 0) count = std::min(count, max_pairs);
  std::vector<ContrastPrompt> pairs;
  for (int64_t i = 0; i < count; ++i) {
    // For each persona p, i div P runs over 0..Q-1, so (p + i div P) mod Q visits every prompt once: all
    // P x Q combinations, and the first min(P, Q) pairs share neither persona nor prompt.
    const int64_t persona = i % personas, prompt = (persona + i / personas) % prompts;
    const std::string& text = definition.prompts[size_t(prompt)];
    pairs.push_back({definition.personas[size_t(persona)].positive + "\n\n" + text,
                     definition.personas[size_t(persona)].negative + "\n\n" + text, persona, prompt});
  }
  return pairs;
}

std::vector<ContrastPrompt> contrast_prompts_from_files(const std::string& positive_file,
                                                        const std::string& negative_file, int64_t max_pairs) {
  const std::vector<std::string> positive = read_prompt_lines(positive_file), negative = read_prompt_lines(negative_file);
  if (positive.size() != negative.size())
    fail("{}: {} prompts, but {} has {}: line i of each forms pair i", positive_file, positive.size(), negative_file,
         negative.size());
  size_t count = positive.size();
  if (max_pairs > 0) count = std::min(count, size_t(max_pairs));
  std::vector<ContrastPrompt> pairs;
  for (size_t i = 0; i < count; ++i) pairs.push_back({positive[i], negative[i], -1, -1});
  return pairs;
}

}  // namespace actcap
