#include "capture/inputs.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "core/sha256.h"
#include "tokenizer/unicode.h"

namespace actcap {

namespace fs = std::filesystem;

namespace {

void check_text(const std::string& text, const std::string& origin) {
  if (!tokenizer::is_valid_utf8(text)) fail("{}: the prompt is not valid UTF-8", origin);
}

std::string strip_line_end(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

std::vector<int32_t> ids_from_json(const nlohmann::json& value, const std::string& origin) {
  if (!value.is_array()) fail("{}: \"input_ids\" must be an array of token ids", origin);
  std::vector<int32_t> ids;
  ids.reserve(value.size());
  for (const auto& v : value) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      fail("{}: \"input_ids\" holds {}, not a token id", origin, v.dump());
    ids.push_back(int32_t(v.get<int64_t>()));
  }
  return ids;
}

InputRecord parse_jsonl_line(const std::string& line, const std::string& origin) {
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e999
    fail("{}: not valid JSON ({})", origin, e.what());
  }
  if (!object.is_object()) fail("{}: each line must be a JSON object with \"text\" or \"input_ids\"", origin);
  InputRecord record;
  record.origin = origin;
  bool has_text = object.contains("text"), has_ids = object.contains("input_ids");
  if (has_text == has_ids) fail("{}: give exactly one of \"text\" and \"input_ids\"", origin);
  if (has_text) {
    if (!object["text"].is_string()) fail("{}: \"text\" must be a string", origin);
    record.text = object["text"].get<std::string>();
    check_text(*record.text, origin);
  } else {
    record.input_ids = ids_from_json(object["input_ids"], origin);
  }
  if (object.contains("id")) {
    const auto& id = object["id"];
    if (!id.is_string() && !id.is_number_integer()) fail("{}: \"id\" must be a string or an integer", origin);
    record.id = id;
  }
  if (object.contains("answer")) {
    const auto& answer = object["answer"];
    bool ok = answer.is_string() || (answer.is_array() && !answer.empty() &&
                                     std::all_of(answer.begin(), answer.end(),
                                                 [](const nlohmann::json& a) { return a.is_string(); }));
    if (!ok) fail("{}: \"answer\" must be a string or a non-empty list of strings", origin);
    record.answer = answer;
  }
  if (object.contains("meta")) {
    if (!object["meta"].is_object()) fail("{}: \"meta\" must be a JSON object", origin);
    record.meta = object["meta"];
  }
  return record;
}

// Copies stdin to a temporary file, hashing it on the way.
std::string copy_stdin(std::string& sha256) {
  std::string path = (fs::temp_directory_path() / "actcap-stdin-XXXXXX").string();
  int fd = mkstemp(path.data());
  if (fd < 0) fail("stdin: cannot create a temporary file in {}", fs::temp_directory_path().string());
  std::FILE* out = fdopen(fd, "wb");
  Sha256 hash;
  std::vector<char> buffer(1 << 16);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), stdin)) > 0) {
    hash.update(buffer.data(), n);
    if (std::fwrite(buffer.data(), 1, n, out) != n) {
      std::fclose(out);
      std::remove(path.c_str());
      fail("stdin: cannot copy it to the temporary file {}", path);
    }
  }
  std::fclose(out);
  sha256 = hash.hex_digest();
  return path;
}

// The ledger names files by canonical absolute path, so that a resumed run that names the same file another way
// (relative, through a link, "DIR//p.txt") has the same provenance.
std::string canonical_path(const std::string& path) {
  std::error_code error;
  fs::path canonical = fs::weakly_canonical(fs::absolute(path), error);
  return error ? path : canonical.string();
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the file", path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

std::vector<int32_t> parse_token_ids(const std::string& given, const std::string& origin) {
  // `actcap tokenize` prints ids as a JSON list: accept that spelling too.
  std::string text = given;
  text.erase(0, text.find_first_not_of(' '));
  text.erase(text.find_last_not_of(' ') + 1);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  std::vector<int32_t> ids;
  size_t i = 0;
  while (true) {
    while (i < text.size() && text[i] == ' ') ++i;
    int64_t value = -1;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), value);
    if (ec != std::errc() || value < 0 || value > INT32_MAX)
      fail("{}: expected comma-separated token ids like 1,2,3 or [1, 2, 3], got \"{}\"", origin, given);
    ids.push_back(int32_t(value));
    i = size_t(end - text.data());
    while (i < text.size() && text[i] == ' ') ++i;
    if (i == text.size()) break;
    if (text[i] != ',')
      fail("{}: expected comma-separated token ids like 1,2,3 or [1, 2, 3], got \"{}\"", origin, given);
    ++i;
  }
  return ids;
}

InputSet::InputSet(const std::vector<InputSource>& sources) {
  if (sources.empty()) fail("no prompts given: use --prompt, --input-ids, --prompts-file, --jsonl, --input-dir or --stdin");
  bool stdin_used = false;
  try {
    for (const auto& source : sources) {
      ExpandedSource expanded{source.kind, source.value, source.value, {}};
      switch (source.kind) {
        case InputSource::Kind::InputIds:
          parse_token_ids(source.value, "--input-ids");
          ++count_;
          break;
        case InputSource::Kind::Prompt:
          check_text(source.value, "--prompt");
          ++count_;
          ++text_count_;
          break;
        case InputSource::Kind::PromptsFile:
        case InputSource::Kind::Jsonl: {
          std::string sha256;
          if (source.value == "-") {
            if (stdin_used) fail("stdin: given more than once as an input");
            stdin_used = true;
            stdin_copy_ = copy_stdin(sha256);
            expanded.value = stdin_copy_;
            expanded.label = "stdin";
          } else {
            if (!fs::is_regular_file(source.value)) fail("{}: no such file", source.value);
            sha256 = sha256_file(source.value);
          }
          std::ifstream in(expanded.value, std::ios::binary);
          if (!in) fail("{}: cannot read the file", expanded.label);
          std::string line;
          int64_t line_number = 0, records = 0;
          while (std::getline(in, line)) {
            ++line_number;
            line = strip_line_end(std::move(line));
            if (line.empty()) continue;
            std::string origin = fmt::format("{}:{}", expanded.label, line_number);
            if (source.kind == InputSource::Kind::Jsonl) {
              text_count_ += parse_jsonl_line(line, origin).text.has_value();
            } else {
              check_text(line, origin);
              ++text_count_;
            }
            ++records;
          }
          if (records == 0) fail("{}: holds no prompts", expanded.label);
          count_ += records;
          ledger_.push_back({source.value == "-" ? "-" : canonical_path(source.value), sha256});
          break;
        }
        case InputSource::Kind::Directory: {
          if (!fs::is_directory(source.value)) fail("{}: no such folder", source.value);
          for (const auto& entry : fs::directory_iterator(source.value))
            if (entry.is_regular_file() && entry.path().extension() == ".txt")
              expanded.files.push_back(entry.path().filename().string());
          std::sort(expanded.files.begin(), expanded.files.end());
          if (expanded.files.empty()) fail("{}: holds no .txt files", source.value);
          for (const auto& name : expanded.files) {
            std::string path = (fs::path(source.value) / name).string();
            std::string text = read_whole(path);
            check_text(text, path);
            ledger_.push_back({canonical_path(path), sha256_hex(text.data(), text.size())});
          }
          count_ += int64_t(expanded.files.size());
          text_count_ += int64_t(expanded.files.size());
          break;
        }
      }
      sources_.push_back(std::move(expanded));
    }
  } catch (...) {
    if (!stdin_copy_.empty()) std::remove(stdin_copy_.c_str());
    throw;
  }
}

InputSet::~InputSet() {
  if (!stdin_copy_.empty()) std::remove(stdin_copy_.c_str());
}

bool InputSet::Cursor::open_next_source() {
  if (source_ >= set_->sources_.size()) return false;
  current_ = &set_->sources_[source_++];
  line_ = 0;
  directory_entry_ = 0;
  file_label_ = current_->label;
  if (current_->kind == InputSource::Kind::PromptsFile || current_->kind == InputSource::Kind::Jsonl) {
    file_ = std::ifstream(current_->value, std::ios::binary);
    if (!file_) fail("{}: cannot read the file", current_->label);
  }
  return true;
}

std::optional<InputRecord> InputSet::Cursor::next() {
  while (true) {
    if (current_ == nullptr && !open_next_source()) return std::nullopt;
    InputRecord record;
    switch (current_->kind) {
      case InputSource::Kind::InputIds:
        record.input_ids = parse_token_ids(current_->value, "--input-ids");
        record.origin = "--input-ids " + current_->value;
        current_ = nullptr;
        return record;
      case InputSource::Kind::Prompt:
        record.text = current_->value;
        record.origin = "--prompt";
        current_ = nullptr;
        return record;
      case InputSource::Kind::PromptsFile:
      case InputSource::Kind::Jsonl: {
        std::string line;
        while (std::getline(file_, line)) {
          ++line_;
          line = strip_line_end(std::move(line));
          if (line.empty()) continue;
          std::string origin = fmt::format("{}:{}", file_label_, line_);
          if (current_->kind == InputSource::Kind::Jsonl) record = parse_jsonl_line(line, origin);
          else record.text = std::move(line);
          // Without an "id" of its own, a line is known by its file's name and line number, which blank lines
          // (skipped) and edits elsewhere in the file leave alone.
          if (record.id.is_null()) record.id = fmt::format("{}:{}", fs::path(file_label_).filename().string(), line_);
          record.origin = origin;
          return record;
        }
        file_.close();
        current_ = nullptr;
        break;
      }
      case InputSource::Kind::Directory: {
        if (directory_entry_ < current_->files.size()) {
          const std::string& name = current_->files[directory_entry_++];
          std::string path = (fs::path(current_->value) / name).string();
          record.text = read_whole(path);
          record.id = name;
          record.origin = path;
          return record;
        }
        current_ = nullptr;
        break;
      }
    }
  }
}

void InputSet::Cursor::skip(int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!next()) fail("--resume: the store holds more records than the inputs give; were the inputs changed?");
}

}  // namespace actcap
