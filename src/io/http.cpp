#include "io/http.h"

#include "core/error.h"
#include "core/text.h"

#ifdef ACTCAP_HAVE_CURL
#include <curl/curl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

namespace actcap {
namespace {

struct Transfer {
  HttpResponse* response = nullptr;
  HttpDownload* download = nullptr;
  CURL* curl = nullptr;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) transfer->response->headers.clear();  // a new response (after a redirect)
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    transfer->response->headers[name] = trim(line.substr(colon + 1));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  HttpDownload* download = transfer->download;
  long status = 0;
  curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
  const size_t n = size * count;
  if (!download || (status != 200 && status != 206)) {
    transfer->response->body.append(data, n);
    return n;
  }
  if (status == 200 && download->offset > 0 && !download->restarted) {
    // The server ignored Range and sends the whole file: start over.
    if (std::fflush(download->file) != 0 || ftruncate(fileno(download->file), 0) != 0) return 0;
    std::rewind(download->file);
    download->restarted = true;
    if (download->progress) *download->progress -= download->offset;
  }
  if (std::fwrite(data, 1, n, download->file) != n) return 0;
  if (download->progress) *download->progress += n;
  return n;
}

}  // namespace

bool http_available() { return true; }

HttpResponse http_request(const HttpRequest& request) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResponse response;
  CURL* curl = curl_easy_init();
  if (!curl) fail("{}: cannot start an HTTP request", request.url);
  Transfer transfer{&response, request.download, curl};
  curl_slist* headers = nullptr;
  if (!request.bearer_token.empty())
    headers = curl_slist_append(headers, ("authorization: Bearer " + request.bearer_token).c_str());
  if (request.head) headers = curl_slist_append(headers, "accept-encoding: identity");
  char error_text[CURL_ERROR_SIZE] = "";
  const std::string range = request.download && request.download->offset
                                ? fmt::format("{}-", request.download->offset) : "";
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, request.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_text);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  // A stalled transfer (under 1 byte/s for 30 s) counts as a network failure and is retried.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  // HEAD stops at the first answer: the hub puts X-Linked-Etag/X-Linked-Size on its redirect to the CDN.
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, request.head ? 0L : 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  if (request.head) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!range.empty()) curl_easy_setopt(curl, CURLOPT_RANGE, range.c_str());
  const CURLcode code = curl_easy_perform(curl);
  response.transport_error = code != CURLE_OK;
  if (response.transport_error) response.error_text = error_text[0] ? error_text : curl_easy_strerror(code);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  if (char* redirect = nullptr; curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect)
    response.redirect_url = redirect;
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

}  // namespace actcap

#else

namespace actcap {

bool http_available() { return false; }

HttpResponse http_request(const HttpRequest&) {
  HttpResponse response;
  response.transport_error = true;
  response.error_text = "this actcap was built without libcurl, so it cannot download";
  return response;
}

}  // namespace actcap

#endif
