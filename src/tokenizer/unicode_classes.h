#pragma once
// Rewrites the Unicode classes of an Oniguruma pattern (\p{..}, \P{..}, \p{^..}, \s \S \d \D \w \W) into
// explicit code point classes from actcap's own tables (unicode_tables.h), so a tokenizer.json pattern matches
// what HF tokenizers' bundled Oniguruma matches whatever Oniguruma the host has.
#include <string>

namespace actcap::tokenizer {

// Error naming the pattern for a \p{...} property actcap has no table for.
std::string expand_unicode_classes(const std::string& pattern);

}  // namespace actcap::tokenizer
