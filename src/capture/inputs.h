#pragma once
// The prompts of a capture run: read from the command line, prompt files, JSONL datasets, folders of .txt
// samples or stdin, validated in full before anything is captured (a bad line 90,000 fails at once, not after
// an hour), then streamed one record at a time so that memory does not grow with the dataset.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace actcap {

struct InputSource {
  enum class Kind {
    InputIds,     // "1,2,3"
    Prompt,       // the text itself
    PromptsFile,  // a path ("-" = stdin): one prompt per line; blank lines are skipped (and still counted)
    Jsonl,        // a path ("-" = stdin): one object per line with "text" or "input_ids", optional "id", "answer",
                  // "meta"
    Directory,    // a folder: every *.txt file (sorted by name) is one prompt, verbatim
  };
  Kind kind;
  std::string value;
};

// One prompt as given, before tokenization.
struct InputRecord {
  nlohmann::json id;  // JSONL "id"; else "NAME:LINE" for a line of a file (NAME without its folders, "stdin");
                      // a sample's file name; null for --prompt and --input-ids
  std::optional<std::string> text;                // text prompts
  std::optional<std::vector<int32_t>> input_ids;  // prompts given as token ids
  nlohmann::json answer;                          // JSONL "answer" (string or list of strings), otherwise null
  nlohmann::json meta;                            // JSONL "meta" (an object), copied into records.jsonl; else null
  std::string origin;                             // where it came from, for error messages ("data.jsonl:12")
};

// An input file (canonical absolute path, "-" for stdin) and its SHA-256, for the manifest's provenance ledger.
struct InputFile {
  std::string path;
  std::string sha256;
};

// Parses "1,2,3" or "[1, 2, 3]" (spaces allowed); throws actcap::Error naming `origin` on anything else.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& origin);

// One source after expansion: a path to read (stdin replaced by its copy) or an inline value.
struct ExpandedSource {
  InputSource::Kind kind;
  std::string value;                   // inline ids / text, or the path actually read
  std::string label;                   // the path to name in messages ("-" shown as "stdin")
  std::vector<std::string> files;      // Directory: the .txt files, sorted
};

class InputSet {
 public:
  // Checks every source (files exist, every line parses, text is valid UTF-8), hashes the files and counts the
  // records. Stdin is copied to a temporary file so that it can be read once per model. Throws actcap::Error.
  explicit InputSet(const std::vector<InputSource>& sources);
  ~InputSet();
  InputSet(const InputSet&) = delete;
  InputSet& operator=(const InputSet&) = delete;

  int64_t size() const { return count_; }
  bool has_text() const { return text_count_ > 0; }  // whether any record needs a tokenizer
  const std::vector<InputFile>& ledger() const { return ledger_; }

  // Reads the records in order, one at a time.
  class Cursor {
   public:
    explicit Cursor(const InputSet& set) : set_(&set) {}
    std::optional<InputRecord> next();
    void skip(int64_t n);  // for --resume: moves past records already captured

   private:
    bool open_next_source();
    const InputSet* set_;
    size_t source_ = 0;  // index of the next source to open
    std::ifstream file_;
    std::string file_label_;
    int64_t line_ = 0;
    const ExpandedSource* current_ = nullptr;
    size_t directory_entry_ = 0;
  };
  Cursor cursor() const { return Cursor(*this); }

 private:
  friend class Cursor;
  std::vector<ExpandedSource> sources_;
  std::vector<InputFile> ledger_;
  std::string stdin_copy_;  // temporary file holding stdin, removed by the destructor
  int64_t count_ = 0, text_count_ = 0;
};

}  // namespace actcap
