#pragma once
// The contrastive prompts of a concept, built the way representation-engineering datasets are: each pair puts
// one user prompt behind a positive and a negative persona ("You are scrupulously honest." / "You are a
// practised liar."), so that the two prompts of a pair differ only in the concept. Built-in concepts live in
// data/concepts/<name>.json ({"name", "description", "personas": [{"positive", "negative"}], "prompts": [...]});
// users bring their own as two files of prompts, line i of each forming pair i.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace actcap {

struct ConceptDefinition {
  std::string name, description;
  struct Persona {
    std::string positive, negative;
  };
  std::vector<Persona> personas;
  std::vector<std::string> prompts;  // neutral user prompts
};

// One contrastive pair: the full user-turn texts of both sides and where they came from.
struct ContrastPrompt {
  std::string positive, negative;
  int64_t persona = -1, prompt = -1;  // indexes into the definition; -1 for a user's own files
};

std::vector<std::string> builtin_concept_names();  // sorted
// A built-in concept by name; an unknown name is an error that suggests the nearest one and lists them all.
ConceptDefinition builtin_concept(const std::string& name);
// Parses and checks a concept document (at least one persona and one prompt, no empty texts); `origin` names it.
ConceptDefinition parse_concept(const nlohmann::json& document, const std::string& origin);

// Every persona x prompt pair, at most `max_pairs` of them (0: all), in an order where any prefix spreads over
// the personas and prompts: pair i uses persona i mod P and prompt (i mod P + i div P) mod Q. The text of a
// side is its persona, a blank line, then the prompt.
std::vector<ContrastPrompt> contrast_prompts(const ConceptDefinition& definition, int64_t max_pairs);

// A user's own pairs: one prompt per non-blank line in each file (lines may be JSON strings, "...", to hold
// escapes such as \n); the files must hold the same number of prompts. At most `max_pairs` (0: all).
std::vector<ContrastPrompt> contrast_prompts_from_files(const std::string& positive_file,
                                                        const std::string& negative_file, int64_t max_pairs);

}  // namespace actcap
