#include "io/hub.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/text.h"
#include "io/http.h"

namespace actcap {
namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::string expand_home(std::string path) {
  if (!path.empty() && path[0] == '~') path = env("HOME") + path.substr(1);
  return path;
}

bool env_true(const std::string& value) {
  std::string lower = value;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  return lower == "1" || lower == "on" || lower == "yes" || lower == "true";
}

bool is_commit_hash(const std::string& text) {
  return text.size() == 40 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_hex(const std::string& text, size_t size) {
  return text.size() == size && std::all_of(text.begin(), text.end(), ::isxdigit);
}

fs::path repo_folder(const HubSettings& settings, const std::string& repo_id) {
  std::string name = "models--" + repo_id;
  for (size_t at = name.find('/'); at != std::string::npos; at = name.find('/', at + 2)) name.replace(at, 1, "--");
  return fs::path(settings.cache_dir) / name;
}

// "org/name" from a cache folder name "models--org--name".
std::optional<std::string> cache_repo_id(const std::string& folder) {
  if (folder.rfind("models--", 0) != 0) return std::nullopt;
  std::string repo_id = folder.substr(8);
  const size_t dashes = repo_id.find("--");
  if (dashes == std::string::npos) return std::nullopt;
  return repo_id.replace(dashes, 2, "/");
}

// The shard files a model.safetensors.index.json names (its weight_map's values).
std::set<std::string> index_shards(const std::string& path) {
  auto index = nlohmann::json::parse(read_file(path), nullptr, false);
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    fail("{}: not a safetensors index (no \"weight_map\" object)", path);
  std::set<std::string> shards;
  for (const auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) fail("{}: weight_map[\"{}\"] is not a file name", path, tensor);
    shards.insert(file.get<std::string>());
  }
  return shards;
}

// A snapshot a capture can load: config.json and the safetensors weights (every shard of an index).
bool snapshot_complete(const fs::path& snapshot) {
  if (!fs::exists(snapshot / "config.json")) return false;
  if (fs::exists(snapshot / "model.safetensors")) return true;
  const fs::path index_path = snapshot / "model.safetensors.index.json";
  if (!fs::exists(index_path)) return false;
  for (const auto& shard : index_shards(index_path.string()))
    if (!fs::exists(snapshot / shard)) return false;
  return true;
}

// The commit a revision names in the cache (a commit hash itself, or refs/<revision>), if any.
std::optional<std::string> cached_commit(const fs::path& repo, const std::string& revision) {
  if (is_commit_hash(revision)) return revision;
  const fs::path ref = repo / "refs" / revision;
  if (!fs::is_regular_file(ref)) return std::nullopt;
  std::string commit = trim(read_file(ref.string()));
  if (!is_commit_hash(commit)) fail("{}: holds \"{}\", not a commit hash", ref.string(), commit);
  return commit;
}

std::string quote(const std::string& text, bool keep_slashes) {
  static const char* unreserved = "-_.~";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || std::strchr(unreserved, c) || (keep_slashes && c == '/'))
      out += char(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// ---- HTTP ------------------------------------------------------------------------------------------------------

using Response = HttpResponse;

std::string user_agent() { return std::string("actcap/") + ACTCAP_VERSION + "; hf_hub/compatible"; }

Response http(const std::string& url, const HubSettings& settings, bool head, HttpDownload* download = nullptr) {
  HttpRequest request{url, "", head, download, user_agent()};
  // The token goes to the hub only: a CDN that the hub redirects to never sees it.
  if (!settings.token.empty() && url.rfind(settings.endpoint + "/", 0) == 0) request.bearer_token = settings.token;
  return http_request(request);
}

bool retryable(const Response& response) {
  return (response.transport_error && http_available()) || response.status == 429 || response.status >= 500;
}

// A one-line error for an HTTP failure about `what` (a repo, revision or file).
[[noreturn]] void fail_http(const Response& response, const std::string& url, const std::string& what,
                            const HubSettings& settings) {
  if (response.transport_error && !http_available())
    fail("{}: {}; use a model folder, or a model already in the HF cache", what, response.error_text);
  if (response.transport_error)
    fail("{}: cannot reach {} ({}); check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only",
         what, url, response.error_text);
  auto code = response.headers.count("x-error-code") ? response.headers.at("x-error-code") : "";
  if (response.status == 401 || response.status == 403 || code == "GatedRepo")
    fail("{}: access denied by {} (HTTP {}{}): the model is gated or private; accept its terms on the hub, then "
         "log in with HF_TOKEN=hf_... or by writing the token to {}{}",
         what, settings.endpoint, response.status, code.empty() ? "" : ", " + code, settings.token_file,
         settings.token.empty() ? "" : " (the token given was refused)");
  if (response.status == 404) {
    const char* which = code == "RevisionNotFound" ? "no such revision"
                        : code == "EntryNotFound"  ? "no such file"
                                                   : "no such model (or revision)";
    fail("{}: not found on {} ({})", what, settings.endpoint, which);
  }
  fail("{}: {} answered HTTP {}{}", what, url, response.status,
       response.status >= 500 ? " after retries; try again later" : "");
}

// Runs `attempt` until it succeeds or fails for good; network errors, 429 and 5xx are retried with backoff.
template <typename Attempt>
Response with_retries(Attempt attempt) {
  constexpr int attempts = 4;
  Response response;
  for (int i = 0; i < attempts; ++i) {
    if (i) std::this_thread::sleep_for(std::chrono::milliseconds(500 << (i - 1)));
    response = attempt();
    if (!retryable(response)) break;
  }
  return response;
}

std::string header(const Response& response, const std::string& name) {
  auto it = response.headers.find(name);
  return it == response.headers.end() ? "" : it->second;
}

// huggingface_hub's etag.lstrip("W/").strip('"').
std::string normalize_etag(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

// Git's blob id: SHA-1 of "blob <size>\0" + bytes (the hub's ETag of a file that is not in LFS).
std::string git_blob_sha1(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail("{}: cannot open", path);
  std::error_code ignored;
  const std::string prefix = fmt::format("blob {}", fs::file_size(path, ignored));
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_DigestInit_ex(context, EVP_sha1(), nullptr);
  EVP_DigestUpdate(context, prefix.data(), prefix.size() + 1);  // with the NUL
  std::vector<char> buffer(1 << 20);
  for (size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), file)) > 0;) EVP_DigestUpdate(context, buffer.data(), n);
  std::fclose(file);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(context, digest, &size);
  EVP_MD_CTX_free(context);
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

struct RemoteFile {
  std::string path, etag, url;
  uint64_t size = 0;
};

struct Listing {
  std::string commit;
  std::vector<std::string> files;
};

Listing list_files(const std::string& repo_id, const std::string& revision, const HubSettings& settings) {
  const std::string url = fmt::format("{}/api/models/{}/revision/{}", settings.endpoint, quote(repo_id, true),
                                      quote(revision, false));
  const std::string what = repo_id + "@" + revision;
  Response response = with_retries([&] { return http(url, settings, false); });
  if (response.transport_error || response.status != 200) fail_http(response, url, what, settings);
  auto info = nlohmann::json::parse(response.body, nullptr, false);
  if (!info.is_object() || !info["sha"].is_string() || !is_commit_hash(info["sha"].get<std::string>()) ||
      !info["siblings"].is_array())
    fail("{}: {} did not answer with a revision (\"sha\" and \"siblings\")", what, url);
  Listing listing{info["sha"].get<std::string>(), {}};
  for (const auto& sibling : info["siblings"]) {
    if (!sibling.is_object() || !sibling["rfilename"].is_string()) continue;
    std::string file = sibling["rfilename"].get<std::string>();
    // The names become paths under snapshots/<commit>/: nothing absolute, no "..", no empty component.
    const fs::path path(file);
    if (file.empty() || path.is_absolute() || file.find('\\') != std::string::npos ||
        std::any_of(path.begin(), path.end(), [](const fs::path& part) { return part == ".." || part.empty(); }))
      fail("{}: {} lists an unsafe file name \"{}\"", what, url, file);
    listing.files.push_back(file);
  }
  return listing;
}

RemoteFile file_metadata(const std::string& repo_id, const std::string& commit, const std::string& path,
                         const HubSettings& settings) {
  RemoteFile file;
  file.path = path;
  const std::string url = fmt::format("{}/{}/resolve/{}/{}", settings.endpoint, quote(repo_id, true), commit,
                                      quote(path, true));
  const std::string what = repo_id + "/" + path;
  Response response = with_retries([&] { return http(url, settings, true); });
  const bool redirect = response.status >= 300 && response.status < 400;
  if (response.transport_error || (response.status != 200 && !redirect)) fail_http(response, url, what, settings);
  std::string linked = header(response, "x-linked-etag");
  file.etag = normalize_etag(linked.empty() ? header(response, "etag") : linked);
  std::string size = header(response, "x-linked-size");
  if (size.empty() && !redirect) size = header(response, "content-length");
  // The etag names the blob file: letters, digits, '-' and '_' only.
  const bool etag_ok = !file.etag.empty() && std::all_of(file.etag.begin(), file.etag.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (!etag_ok || size.empty() || size.find_first_not_of("0123456789") != std::string::npos)
    fail("{}: {} sent no usable ETag/X-Linked-Etag and size", what, url);
  file.size = std::stoull(size);
  file.url = redirect && !response.redirect_url.empty() ? response.redirect_url : url;
  return file;
}

// Makes `pointer` a relative symlink to `blob` (as huggingface_hub does), or a copy where links are refused.
void link_pointer(const fs::path& blob, const fs::path& pointer) {
  fs::create_directories(pointer.parent_path());
  std::error_code error;
  fs::remove(pointer, error);
  fs::create_symlink(fs::relative(blob, pointer.parent_path()), pointer, error);
  if (error) fs::copy_file(blob, pointer, fs::copy_options::overwrite_existing);
}

// Downloads one file into blobs/<etag> (resuming blobs/<etag>.incomplete), checks it, links it in the snapshot.
void fetch_file(const std::string& repo_id, const fs::path& repo, const std::string& commit, const RemoteFile& file,
                const HubSettings& settings, std::atomic<uint64_t>& progress) {
  const fs::path blob = repo / "blobs" / file.etag;
  const std::string what = repo_id + "/" + file.path;
  // One writer per blob across processes, on huggingface_hub's lock file (.locks/<repo folder>/<etag>.lock).
  const fs::path lock_path = repo.parent_path() / ".locks" / repo.filename() / (file.etag + ".lock");
  fs::create_directories(lock_path.parent_path());
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0664);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) fail("{}: cannot lock", lock_path.string());
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (fs::exists(blob)) {
    progress += file.size;  // in the cache already
  } else {
    fs::create_directories(blob.parent_path());
    const std::string partial = blob.string() + ".incomplete";
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_closer(std::fopen(partial.c_str(), "ab"), std::fclose);
    std::FILE* out = file_closer.get();
    if (!out) fail("{}: cannot write", partial);
    std::fseek(out, 0, SEEK_END);
    progress += uint64_t(std::ftell(out));  // resumed bytes count as done
    Response response = with_retries([&] {
      uint64_t offset = uint64_t(std::ftell(out));
      if (offset == file.size) {  // complete already, but not yet checked
        Response complete;
        complete.status = 206;
        return complete;
      }
      if (offset > file.size) {  // not this file's bytes: start over
        progress -= offset;
        if (std::fflush(out) != 0 || ftruncate(fileno(out), 0) != 0) fail("{}: cannot truncate", partial);
        std::rewind(out);
        offset = 0;
      }
      HttpDownload download{out, offset, &progress};
      Response answer = http(file.url, settings, false, &download);
      std::fflush(out);
      return answer;
    });
    const uint64_t have = uint64_t(std::ftell(out));
    const bool closed = std::fclose(file_closer.release()) == 0;
    if (response.transport_error || (response.status != 200 && response.status != 206))
      fail_http(response, file.url, what, settings);  // the partial blob stays, to be resumed next time
    if (!closed) fail("{}: cannot write", partial);
    std::string problem;
    if (have != file.size) {
      problem = fmt::format("{} bytes instead of {}", have, file.size);
    } else if (is_hex(file.etag, 64)) {
      std::string digest = sha256_file(partial);
      if (digest != file.etag) problem = fmt::format("SHA-256 {} instead of {}", digest, file.etag);
    } else if (is_hex(file.etag, 40)) {
      std::string digest = git_blob_sha1(partial);
      if (digest != file.etag) problem = fmt::format("git SHA-1 {} instead of {}", digest, file.etag);
    }
    if (!problem.empty()) {
      fs::remove(partial);
      fail("{}: downloaded bytes are corrupt ({}); the partial file was removed, run again", what, problem);
    }
    fs::rename(partial, blob);
  }
  link_pointer(blob, repo / "snapshots" / commit / file.path);
}

bool matches(const std::string& file, const std::vector<std::string>& globs) {
  for (const auto& glob : globs)
    if (fnmatch(glob.c_str(), file.c_str(), 0) == 0) return true;  // no FNM_PATHNAME: '*' spans '/', as fnmatchcase
  return false;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) bytes /= 1024, ++unit;
  return fmt::format("{:.1f} {}", bytes, units[unit]);
}

// Redraws one line on stderr with the bytes downloaded and the rate, until stopped.
class ProgressLine {
 public:
  ProgressLine(std::string label, uint64_t total, std::atomic<uint64_t>& done, bool enabled)
      : label_(std::move(label)), total_(total), done_(done) {
    if (enabled) thread_ = std::thread([this] { loop(); });
  }
  ~ProgressLine() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    draw();
    std::fputc('\n', stderr);
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) draw();
  }
  void draw() {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const uint64_t done = std::min<uint64_t>(done_, total_);
    std::fprintf(stderr, "\r%s: %s / %s, %s/s   ", label_.c_str(), human_bytes(double(done)).c_str(),
                 human_bytes(double(total_)).c_str(), human_bytes(seconds > 0 ? double(done) / seconds : 0).c_str());
    std::fflush(stderr);
  }
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t>& done_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

HubSettings HubSettings::from_environment() {
  HubSettings settings;
  std::string home = env("HF_HOME");
  if (home.empty()) {
    std::string xdg = env("XDG_CACHE_HOME");
    home = (xdg.empty() ? env("HOME") + "/.cache" : xdg) + "/huggingface";
  }
  home = expand_home(home);
  settings.cache_dir = env("HF_HUB_CACHE");
  if (settings.cache_dir.empty()) settings.cache_dir = env("HUGGINGFACE_HUB_CACHE");
  if (settings.cache_dir.empty()) settings.cache_dir = home + "/hub";
  settings.cache_dir = expand_home(settings.cache_dir);
  settings.endpoint = env("HF_ENDPOINT");
  if (settings.endpoint.empty()) settings.endpoint = "https://huggingface.co";
  while (!settings.endpoint.empty() && settings.endpoint.back() == '/') settings.endpoint.pop_back();
  const char* offline = std::getenv("HF_HUB_OFFLINE");
  settings.offline = env_true(offline ? offline : env("TRANSFORMERS_OFFLINE"));
  settings.token_file = env("HF_TOKEN_PATH");
  if (settings.token_file.empty()) settings.token_file = home + "/token";
  settings.token = trim(env("HF_TOKEN"));
  if (settings.token.empty()) settings.token = trim(env("HUGGING_FACE_HUB_TOKEN"));
  if (settings.token.empty() && fs::is_regular_file(settings.token_file))
    settings.token = trim(read_file(settings.token_file));
  return settings;
}

bool parse_repo_name(const std::string& name, std::string& repo_id, std::string& revision) {
  const size_t at = name.find('@');
  repo_id = name.substr(0, at);
  revision = at == std::string::npos ? "main" : name.substr(at + 1);
  const size_t slash = repo_id.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo_id.size() ||
      repo_id.find('/', slash + 1) != std::string::npos || revision.empty())
    return false;
  // The hub's names: letters, digits, '-', '_', '.'; never "..".
  for (char c : repo_id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr("-_./", c)) return false;
  return repo_id.find("..") == std::string::npos && revision.find("..") == std::string::npos;
}

bool needed_for_capture(const std::string& file) {
  static const std::vector<std::string> globs = {
      "config.json",       "generation_config.json", "tokenizer.json", "tokenizer_config.json",
      "special_tokens_map.json", "vocab.json",       "merges.txt",     "tokenizer.model",
      "added_tokens.json", "chat_template.jinja",    "chat_template.json", "*.safetensors",
      "model.safetensors.index.json"};
  return file.find('/') == std::string::npos && matches(file, globs);
}

ResolvedModel download_model(const std::string& repo_id, const std::string& revision, const HubSettings& settings,
                             const DownloadOptions& options) {
  if (settings.offline)
    fail("{}@{}: cannot download with HF_HUB_OFFLINE set; unset it or fill the cache {}", repo_id, revision,
         settings.cache_dir);
  Listing listing = list_files(repo_id, revision, settings);
  std::vector<std::string> wanted;
  for (const auto& file : listing.files)
    if (options.include.empty() ? needed_for_capture(file) : matches(file, options.include)) wanted.push_back(file);
  if (wanted.empty())
    fail("{}@{}: no file to download{}", repo_id, revision,
         options.include.empty() ? " (no config.json, tokenizer or safetensors weights)" : " matches --include");
  const fs::path repo = repo_folder(settings, repo_id);
  fs::create_directories(repo / "refs");

  // Sharded weights: the index first, then only the shards it names (repos also hold other .safetensors files,
  // e.g. a consolidated copy of every weight).
  const std::string index_name = "model.safetensors.index.json";
  if (options.include.empty() && std::find(wanted.begin(), wanted.end(), index_name) != wanted.end()) {
    std::atomic<uint64_t> ignored{0};
    fetch_file(repo_id, repo, listing.commit, file_metadata(repo_id, listing.commit, index_name, settings), settings,
               ignored);
    const std::set<std::string> shards = index_shards((repo / "snapshots" / listing.commit / index_name).string());
    for (const auto& shard : shards)
      if (std::find(wanted.begin(), wanted.end(), shard) == wanted.end())
        fail("{}@{}: {} names {}, which the repo does not hold", repo_id, revision, index_name, shard);
    std::erase_if(wanted, [&](const std::string& file) {
      return file == index_name || (file.ends_with(".safetensors") && !shards.count(file));
    });
  }

  std::vector<RemoteFile> files;
  uint64_t total = 0;
  for (const auto& path : wanted) {
    files.push_back(file_metadata(repo_id, listing.commit, path, settings));
    total += files.back().size;
  }
  std::atomic<uint64_t> done{0};
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  std::string first_error;
  {
    ProgressLine progress(repo_id, total, done, options.progress);
    std::vector<std::thread> workers;
    const int threads = std::max(1, std::min<int>(options.parallel_files, int(files.size())));
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&] {
        for (size_t i; (i = next++) < files.size();) {
          try {
            fetch_file(repo_id, repo, listing.commit, files[i], settings, done);
          } catch (const std::exception& e) {
            std::lock_guard lock(error_mutex);
            if (first_error.empty()) first_error = e.what();
            next = files.size();  // stop taking new files
          }
        }
      });
    for (auto& worker : workers) worker.join();
  }
  if (!first_error.empty()) throw Error(first_error);
  // refs/<revision> holds the commit with no newline, written atomically (huggingface_hub reads it unstripped).
  if (revision != listing.commit) write_file_atomic((repo / "refs" / revision).string(), listing.commit);
  return {(repo / "snapshots" / listing.commit).string(), repo_id, revision, listing.commit};
}

ResolvedModel resolve_model(const std::string& name) {
  fs::path path(name);
  if (fs::is_directory(path)) {
    if (path.filename().empty()) path = path.parent_path();
    // A cache repo folder (models--org--name) means its refs/main snapshot.
    if (auto repo_id = cache_repo_id(path.filename().string()); repo_id && fs::is_directory(path / "snapshots")) {
      auto commit = cached_commit(path, "main");
      if (!commit) fail("{}: a hub cache folder without refs/main", name);
      return {(path / "snapshots" / *commit).string(), *repo_id, "main", *commit};
    }
    // A snapshot folder (.../models--org--name/snapshots/<commit>) keeps its provenance.
    const fs::path parent = fs::absolute(path).parent_path();
    if (auto repo_id = cache_repo_id(parent.parent_path().filename().string());
        repo_id && parent.filename() == "snapshots" && is_commit_hash(path.filename().string()))
      return {name, *repo_id, path.filename().string(), path.filename().string()};
    return {name, "", "", ""};
  }
  std::string repo_id, revision;
  if (!parse_repo_name(name, repo_id, revision))
    fail("{}: no such model folder, and not a hub model name (org/name or org/name@revision)", name);
  const HubSettings settings = HubSettings::from_environment();
  const fs::path repo = repo_folder(settings, repo_id);
  if (auto commit = cached_commit(repo, revision)) {
    const fs::path snapshot = repo / "snapshots" / *commit;
    if (snapshot_complete(snapshot)) return {snapshot.string(), repo_id, revision, *commit};
  }
  if (settings.offline)
    fail("{}: not in the hub cache {} (or incomplete there), and HF_HUB_OFFLINE forbids downloading it", name,
         settings.cache_dir);
  DownloadOptions options;
  options.progress = isatty(STDERR_FILENO);
  return download_model(repo_id, revision, settings, options);
}

}  // namespace actcap
