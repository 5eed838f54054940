#pragma once
// The built-in concepts, data/concepts/<name>.json, compiled into the library by CMake
// (cmake/embed_concepts.cmake), so that an installed binary needs no data folder.
#include <span>

namespace actcap {

struct EmbeddedFile {
  const char* name;      // the file's name without ".json"
  const char* contents;  // the file's bytes
};

// Sorted by name.
std::span<const EmbeddedFile> builtin_concept_files();

}  // namespace actcap
