#include "tokenizer/jinja_string.h"

#include <utf8proc.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace actcap::jinja {

bool is_js_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

size_t js_whitespace_length_at(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  size_t next = pos;
  char32_t cp = next_code_point(text, next);
  return is_js_whitespace(cp) ? next - pos : 0;
}

std::string js_trim_start(std::string_view text) {
  size_t pos = 0;
  while (size_t n = js_whitespace_length_at(text, pos)) pos += n;
  return std::string(text.substr(pos));
}

std::string js_trim_end(std::string_view text) {
  size_t end = 0, pos = 0;
  while (pos < text.size()) {
    size_t n = js_whitespace_length_at(text, pos);
    if (n) {
      pos += n;
    } else {
      next_code_point(text, pos);
      end = pos;
    }
  }
  return std::string(text.substr(0, end));
}

std::string js_trim(std::string_view text) { return js_trim_end(js_trim_start(text)); }

size_t utf16_length(std::string_view text) {
  size_t units = 0;
  for (size_t pos = 0; pos < text.size();) units += next_code_point(text, pos) >= 0x10000 ? 2 : 1;
  return units;
}

static std::vector<char16_t> to_utf16(std::string_view text) {
  std::vector<char16_t> units;
  units.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = next_code_point(text, pos);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      units.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      units.push_back(static_cast<char16_t>(cp));
    }
  }
  return units;
}

bool utf16_at(std::string_view text, int64_t index, std::string& out) {
  auto units = to_utf16(text);
  int64_t n = static_cast<int64_t>(units.size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) return false;
  char16_t unit = units[static_cast<size_t>(index)];
  out.clear();
  append_utf8(out, unit >= 0xD800 && unit <= 0xDFFF ? char32_t{0xFFFD} : char32_t{unit});
  return true;
}

int compare_utf16(std::string_view a, std::string_view b) {
  auto ua = to_utf16(a), ub = to_utf16(b);
  if (ua < ub) return -1;
  return ua == ub ? 0 : 1;
}

// Full (SpecialCasing) upper-case expansions that JS applies and the simple mapping lacks.
static const char* special_upper(char32_t cp) {
  switch (cp) {
    case 0x00DF: return "SS";
    case 0x0149: return "\u02BCN";
    case 0xFB00: return "FF";
    case 0xFB01: return "FI";
    case 0xFB02: return "FL";
    case 0xFB03: return "FFI";
    case 0xFB04: return "FFL";
    case 0xFB05: return "ST";
    case 0xFB06: return "ST";
    default: return nullptr;
  }
}

std::string js_to_upper(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = next_code_point(text, pos);
    if (const char* expansion = special_upper(cp)) {
      out += expansion;
    } else {
      append_utf8(out, static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp))));
    }
  }
  return out;
}

static bool is_letter(char32_t cp) {
  auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

std::string js_to_lower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char32_t previous = 0;
  for (size_t pos = 0; pos < text.size();) {
    char32_t cp = next_code_point(text, pos);
    if (cp == 0x0130) {
      out += "i\u0307";
    } else if (cp == 0x03A3) {
      // Final sigma: a capital sigma ending a word lowercases to ς.
      bool followed_by_letter = false;
      if (pos < text.size()) {
        size_t peek = pos;
        followed_by_letter = is_letter(next_code_point(text, peek));
      }
      out += is_letter(previous) && !followed_by_letter ? "\u03C2" : "\u03C3";
    } else {
      append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
    }
    previous = cp;
  }
  return out;
}

std::string js_number_to_string(double value) {
  if (std::isnan(value)) return "NaN";
  if (value == 0) return "0";
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";
  if (value < 0) return std::string(1, '-').append(js_number_to_string(-value));
  // Shortest round-trip digits d.ddd e±X, then laid out by the ECMAScript Number::toString rules.
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  std::string scientific(buffer, result.ptr);
  size_t e = scientific.find('e');
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (scientific[i] != '.') digits += scientific[i];
  int k = static_cast<int>(digits.size());
  int n = std::atoi(scientific.c_str() + e + 1) + 1;
  if (k <= n && n <= 21) return digits + std::string(static_cast<size_t>(n - k), '0');
  if (0 < n && n <= 21) return digits.substr(0, static_cast<size_t>(n)) + "." + digits.substr(static_cast<size_t>(n));
  if (-6 < n && n <= 0) return "0." + std::string(static_cast<size_t>(-n), '0') + digits;
  std::string exponent(1, n - 1 >= 0 ? '+' : '-');
  exponent += std::to_string(std::abs(n - 1));
  if (k == 1) return digits + "e" + exponent;
  return digits.substr(0, 1) + "." + digits.substr(1) + "e" + exponent;
}

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string make_ascii_safe(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  for (char16_t unit : to_utf16(json)) {
    if (unit >= 0x7F) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(unit));
      out += escape;
    } else {
      out += static_cast<char>(unit);
    }
  }
  return out;
}

static size_t skip_js_whitespace(std::string_view text, size_t pos) {
  while (size_t n = js_whitespace_length_at(text, pos)) pos += n;
  return pos;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of the longest StrDecimalLiteral prefix of text (sign, Infinity, digits, fraction, exponent); 0 if none.
static size_t decimal_literal_prefix(std::string_view text) {
  size_t pos = 0;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) ++pos;
  if (text.substr(pos, 8) == "Infinity") return pos + 8;
  size_t mantissa_start = pos;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  bool any_digits = pos > mantissa_start;
  if (pos < text.size() && text[pos] == '.') {
    size_t fraction = pos + 1;
    while (fraction < text.size() && is_digit(text[fraction])) ++fraction;
    if (any_digits || fraction > pos + 1) {
      any_digits = true;
      pos = fraction;
    }
  }
  if (!any_digits) return 0;
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    size_t exponent = pos + 1;
    if (exponent < text.size() && (text[exponent] == '+' || text[exponent] == '-')) ++exponent;
    size_t exponent_digits = exponent;
    while (exponent_digits < text.size() && is_digit(text[exponent_digits])) ++exponent_digits;
    if (exponent_digits > exponent) pos = exponent_digits;
  }
  return pos;
}

static double decimal_value(std::string_view literal) {
  std::string s(literal);
  size_t at = s.find("Infinity");
  if (at != std::string::npos) return s[0] == '-' ? -INFINITY : INFINITY;
  return std::strtod(s.c_str(), nullptr);
}

bool js_parse_int(std::string_view text, double& out) {
  size_t pos = skip_js_whitespace(text, 0);
  bool negative = false;
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) negative = text[pos++] == '-';
  size_t start = pos;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  if (pos == start) return false;
  double value = std::strtod(std::string(text.substr(start, pos - start)).c_str(), nullptr);
  out = negative ? -value : value;
  return true;
}

bool js_parse_float(std::string_view text, double& out) {
  std::string_view rest = text.substr(skip_js_whitespace(text, 0));
  size_t length = decimal_literal_prefix(rest);
  if (length == 0) return false;
  out = decimal_value(rest.substr(0, length));
  return true;
}

double js_string_to_number(std::string_view text) {
  std::string trimmed = js_trim(text);
  if (trimmed.empty()) return 0;
  if (trimmed.size() > 2 && trimmed[0] == '0') {
    int base = 0;
    char prefix = static_cast<char>(trimmed[1] | 0x20);
    if (prefix == 'x') base = 16;
    if (prefix == 'o') base = 8;
    if (prefix == 'b') base = 2;
    if (base) {
      double value = 0;
      for (size_t i = 2; i < trimmed.size(); ++i) {
        char c = static_cast<char>(trimmed[i] | 0x20);
        int digit = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 99;
        if (digit >= base) return NAN;
        value = value * base + digit;
      }
      return value;
    }
  }
  if (decimal_literal_prefix(trimmed) != trimmed.size()) return NAN;
  return decimal_value(trimmed);
}

}  // namespace actcap::jinja
