#pragma once
// String semantics of JavaScript, on UTF-8 text. Chat templates are rendered exactly like @huggingface/jinja,
// which runs on JS strings (UTF-16, Unicode whitespace for trim, full case mapping), so lengths, indexing,
// trimming and case changes follow the JS rules here rather than Python's.
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/unicode.h"

namespace actcap::jinja {

// UTF-8 decoding and encoding are the tokenizer's.
using tokenizer::append_utf8;
using tokenizer::is_valid_utf8;
using tokenizer::next_code_point;

// JS /\s/: ASCII whitespace plus the Unicode space separators, U+2028/9 and U+FEFF.
bool is_js_whitespace(char32_t cp);
// Length in bytes of the JS-whitespace character starting at `pos`, or 0.
size_t js_whitespace_length_at(std::string_view text, size_t pos);
std::string js_trim(std::string_view text);
std::string js_trim_start(std::string_view text);
std::string js_trim_end(std::string_view text);

// String.prototype.length: UTF-16 code units.
size_t utf16_length(std::string_view text);
// String.prototype.at(index) on UTF-16 code units; false when out of range. A lone surrogate comes out as
// U+FFFD, as Node writes it.
bool utf16_at(std::string_view text, int64_t index, std::string& out);
// Compares like JS `<` on strings (UTF-16 code unit order): -1, 0, 1.
int compare_utf16(std::string_view a, std::string_view b);

std::string js_to_upper(std::string_view text);
std::string js_to_lower(std::string_view text);

// JS Number.prototype.toString() (shortest round-trip digits, exponent form outside [1e-7, 1e21)).
std::string js_number_to_string(double value);
// JSON.stringify of a string: quotes, escapes of `"`, `\`, control characters; nothing else escaped.
std::string json_quote(std::string_view text);
// Replaces every UTF-16 code unit in [0x7f, 0xffff] with \uXXXX (what ensure_ascii does in @huggingface/jinja).
std::string make_ascii_safe(std::string_view json);

// parseInt(text, 10) / parseFloat(text); false when the result is NaN.
bool js_parse_int(std::string_view text, double& out);
bool js_parse_float(std::string_view text, double& out);
// ToNumber(string) as used by loose equality (`"1" == 1`); NaN when not a number.
double js_string_to_number(std::string_view text);

}  // namespace actcap::jinja
