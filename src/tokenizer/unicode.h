#pragma once
// UTF-8 helpers with the exact semantics HF tokenizers (Rust) relies on: strict validation, code point
// iteration, Rust's char::is_whitespace / is_alphanumeric, and String::from_utf8_lossy.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "tokenizer/unicode_tables.h"

namespace actcap::tokenizer {

// Offset of the first byte that does not start a valid UTF-8 sequence, or npos when `text` is valid.
size_t first_invalid_utf8(std::string_view text);
inline bool is_valid_utf8(std::string_view text) { return first_invalid_utf8(text) == std::string_view::npos; }

// Decodes the code point starting at text[i] (meant for valid UTF-8) and advances i past it. A sequence cut
// short by the end of `text` decodes from the bytes there are, so i never passes text.size().
char32_t next_code_point(std::string_view text, size_t& i);
// Byte length of the UTF-8 sequence whose first byte is `lead` (valid text only).
inline size_t utf8_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }
void append_utf8(std::string& out, char32_t cp);

// Rust's char::is_whitespace (Unicode White_Space).
bool is_white_space(char32_t cp);
// Rust's char::is_alphanumeric approximated by general category L* or N* (used only for single_word).
bool is_word_char(char32_t cp);

// Whether `cp` lies in one of `ranges` (ascending, disjoint).
bool contains(std::span<const CodePointRange> ranges, char32_t cp);

// Rust's String::from_utf8_lossy: each maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace actcap::tokenizer
