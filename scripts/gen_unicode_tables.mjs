// Writes src/tokenizer/unicode_tables.cpp from the Unicode data HF tokenizers 0.22 carries, found by sweeping
// every code point through the real HF tokenizers (tests/oracle/tokenizer_sweep.js): the code point ranges of
// the properties tokenizer.json patterns use (its Oniguruma has Unicode 16.0), and the code points assigned in
// Unicode 9.0, the version of its normalization tables (unicode-normalization-alignments); for the BERT
// normalizer and pre-tokenizer, the classes of the unicode_categories crate (Unicode 8.0) and Rust's
// char::to_lowercase (Unicode 16.0).
// The data comes from the npm packages pinned in tests/oracle/package.json, so actcap's tables never depend on
// the host's libraries. Usage: node scripts/gen_unicode_tables.mjs [OUT.cpp]   (default: the source file)
import fs from "fs";
import path from "path";
import { createRequire } from "module";
import { fileURLToPath, pathToFileURL } from "url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(path.join(root, "tests/oracle/package.json"));
const packageDir = (unicode) => path.dirname(require.resolve(`@unicode/unicode-${unicode}/package.json`));
const packageName = (unicode) =>
  `@unicode/unicode-${unicode} ${JSON.parse(fs.readFileSync(path.join(packageDir(unicode), "package.json"), "utf8")).version}`;
const REGEX_UNICODE = "16.0.0", NORMALIZATION_UNICODE = "9.0.0", BERT_UNICODE = "8.0.0";

async function load(property, unicode = REGEX_UNICODE) {
  const url = pathToFileURL(path.join(packageDir(unicode), property, "ranges.mjs"));
  const ranges = (await import(url.href)).default;
  return ranges.map((r) => [r.begin, r.end - 1]);
}

function union(...sets) {
  const all = sets.flat().sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const [a, b] of all) {
    if (out.length && a <= out[out.length - 1][1] + 1) out[out.length - 1][1] = Math.max(out[out.length - 1][1], b);
    else out.push([a, b]);
  }
  return out;
}

// General_Category values: short name, long name (the package's folder).
const CATEGORIES = [
  ["L", "Letter"], ["LC", "Cased_Letter"], ["Lu", "Uppercase_Letter"], ["Ll", "Lowercase_Letter"],
  ["Lt", "Titlecase_Letter"], ["Lm", "Modifier_Letter"], ["Lo", "Other_Letter"],
  ["M", "Mark"], ["Mn", "Nonspacing_Mark"], ["Mc", "Spacing_Mark"], ["Me", "Enclosing_Mark"],
  ["N", "Number"], ["Nd", "Decimal_Number"], ["Nl", "Letter_Number"], ["No", "Other_Number"],
  ["P", "Punctuation"], ["Pc", "Connector_Punctuation"], ["Pd", "Dash_Punctuation"], ["Ps", "Open_Punctuation"],
  ["Pe", "Close_Punctuation"], ["Pi", "Initial_Punctuation"], ["Pf", "Final_Punctuation"], ["Po", "Other_Punctuation"],
  ["S", "Symbol"], ["Sm", "Math_Symbol"], ["Sc", "Currency_Symbol"], ["Sk", "Modifier_Symbol"], ["So", "Other_Symbol"],
  ["Z", "Separator"], ["Zs", "Space_Separator"], ["Zl", "Line_Separator"], ["Zp", "Paragraph_Separator"],
  ["C", "Other"], ["Cc", "Control"], ["Cf", "Format"], ["Cs", "Surrogate"], ["Co", "Private_Use"], ["Cn", "Unassigned"],
];

// Rust's char::to_lowercase: SpecialCasing's unconditional mapping, else the simple one; changed ones only.
async function lowercaseMappings() {
  const mapping = async (property) => {
    const url = pathToFileURL(path.join(packageDir(REGEX_UNICODE), property, "code-points.mjs"));
    return (await import(url.href)).default;
  };
  const special = await mapping("Special_Casing/Lowercase");
  const simple = await mapping("Simple_Case_Mapping/Lowercase");
  const out = [];
  for (const cp of [...new Set([...special.keys(), ...simple.keys()])].sort((a, b) => a - b)) {
    const to = special.has(cp) ? special.get(cp) : [simple.get(cp)];
    if (to.length > 3) throw new Error(`lowercase of ${cp} is longer than 3`);
    if (!(to.length === 1 && to[0] === cp)) out.push([cp, to]);
  }
  return out;
}

function complement(ranges) {
  const out = [];
  let next = 0;
  for (const [a, b] of ranges) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

// Oniguruma's property names are matched loosely: case, ' ', '-' and '_' ignored.
const loose = (name) => name.toLowerCase().replace(/[ _-]/g, "");

async function main() {
  const out = process.argv[2] || path.join(root, "src/tokenizer/unicode_tables.cpp");
  const sets = [];  // [names[], ranges]
  for (const [short, long] of CATEGORIES) sets.push([[short, long], await load(`General_Category/${long}`)]);
  const whiteSpace = await load("Binary_Property/White_Space");
  const alphabetic = await load("Binary_Property/Alphabetic");
  sets.push([["White_Space", "WSpace", "Space"], whiteSpace]);
  sets.push([["Alphabetic", "Alpha"], alphabetic]);
  // Oniguruma's \w: Alphabetic, marks, decimal digits, connector punctuation, and below U+0100 its Latin-1
  // table's word characters, which add the superscripts ²³¹ and the fractions ¼½¾ (as HF's \w matches).
  const word = union(alphabetic, await load("General_Category/Mark"), await load("General_Category/Decimal_Number"),
                     await load("General_Category/Connector_Punctuation"), [[0xb2, 0xb3], [0xb9, 0xb9], [0xbc, 0xbe]]);
  sets.push([["Word"], word]);
  sets.push([["Any"], [[0, 0x10ffff]]]);
  sets.push([["Assigned"], union(...(await Promise.all(CATEGORIES.filter(([s]) => s.length === 2 && s !== "Cn" && s !== "LC")
                                                          .map(([, l]) => load(`General_Category/${l}`)))))]);
  const scripts = fs.readdirSync(path.join(packageDir(REGEX_UNICODE), "Script")).filter((d) => !d.includes(".")).sort();
  for (const script of scripts) sets.push([[script], await load(`Script/${script}`)]);

  const entries = [];  // [loose name, offset, count]
  const ranges = [];
  for (const [names, set] of sets) {
    for (const name of names) entries.push([loose(name), ranges.length, set.length]);
    ranges.push(...set);
  }
  const normalizationAssigned = complement(await load("General_Category/Unassigned", NORMALIZATION_UNICODE));
  const bert = (...categories) => Promise.all(categories.map((c) => load(`General_Category/${c}`, BERT_UNICODE)));
  const asciiPunctuation = [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]];
  const bertPunctuation = union(asciiPunctuation, ...(await bert("Punctuation")));
  const bertOther = union(...(await bert("Control", "Format", "Private_Use", "Surrogate")));
  const bertNonspacingMark = union(...(await bert("Nonspacing_Mark")));
  const lowercase = await lowercaseMappings();
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 1; i < entries.length; i++) if (entries[i][0] === entries[i - 1][0]) throw new Error(`duplicate ${entries[i][0]}`);

  const hex = (c) => "0x" + c.toString(16).toUpperCase();
  const rows = (list) => {
    const lines = [];
    for (let i = 0; i < list.length; i += 6)
      lines.push("    " + list.slice(i, i + 6).map(([a, b]) => `{${hex(a)}, ${hex(b)}}`).join(", ") + ",");
    return lines.join("\n");
  };
  const caseRows = (list) => {
    const lines = [];
    for (let i = 0; i < list.length; i += 4)
      lines.push("    " + list.slice(i, i + 4).map(([c, to]) => `{${hex(c)}, {${to.map(hex).join(", ")}}}`).join(", ") + ",");
    return lines.join("\n");
  };
  const text = `// Generated by scripts/gen_unicode_tables.mjs from ${packageName(REGEX_UNICODE)},
// ${packageName(NORMALIZATION_UNICODE)} and ${packageName(BERT_UNICODE)}: do not edit.
#include "tokenizer/unicode_tables.h"

#include <algorithm>

namespace actcap::tokenizer {
namespace {

constexpr CodePointRange kRanges[] = {
${rows(ranges)}
};

constexpr CodePointRange kNormalizationAssigned[] = {
${rows(normalizationAssigned)}
};

struct Property {
  std::string_view loose_name;
  size_t offset, count;
};

constexpr Property kProperties[] = {
${entries.map(([n, o, c]) => `    {"${n}", ${o}, ${c}},`).join("\n")}
};

}  // namespace

constexpr CodePointRange kBertPunctuation[] = {
${rows(bertPunctuation)}
};

constexpr CodePointRange kBertOther[] = {
${rows(bertOther)}
};

constexpr CodePointRange kBertNonspacingMark[] = {
${rows(bertNonspacingMark)}
};

constexpr CaseMapping kLowercase[] = {
${caseRows(lowercase)}
};

const char* const kRegexUnicodeVersion = "${REGEX_UNICODE}";
const char* const kNormalizationUnicodeVersion = "${NORMALIZATION_UNICODE}";

std::optional<std::span<const CodePointRange>> unicode_property(std::string_view loose_name) {
  const auto* end = std::end(kProperties);
  const auto* it = std::lower_bound(std::begin(kProperties), end, loose_name,
                                    [](const Property& p, std::string_view name) { return p.loose_name < name; });
  if (it == end || it->loose_name != loose_name) return std::nullopt;
  return std::span<const CodePointRange>(kRanges + it->offset, it->count);
}

std::span<const CodePointRange> normalization_assigned() { return kNormalizationAssigned; }
std::span<const CodePointRange> bert_punctuation() { return kBertPunctuation; }
std::span<const CodePointRange> bert_other() { return kBertOther; }
std::span<const CodePointRange> bert_nonspacing_mark() { return kBertNonspacingMark; }
std::span<const CaseMapping> lowercase_mappings() { return kLowercase; }

}  // namespace actcap::tokenizer
`;
  fs.writeFileSync(out, text);
}

main().catch((e) => { console.error(e); process.exit(1); });
