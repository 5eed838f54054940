#pragma once
// HTTP requests for the hub client, through libcurl. libcurl is optional at build time so that the engine
// builds where it is missing (the GPU machine's image): there every request fails at once with
// `transport_error` and an error text saying so, and models come from folders or the cache only.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

namespace actcap {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response received
  std::string redirect_url;
  std::string body;              // error and API bodies only (a download's 2xx bytes go to its file)
  bool transport_error = false;  // no HTTP answer: network, TLS, timeout, stall
  std::string error_text;
};

// A GET whose 2xx bytes go to a file, possibly resumed with a Range request from `offset`.
struct HttpDownload {
  std::FILE* file = nullptr;
  uint64_t offset = 0;                         // bytes already in the file when the request is made
  std::atomic<uint64_t>* progress = nullptr;  // bytes written so far, for a progress display
  bool restarted = false;                      // the server ignored Range and sent the whole file again
};

struct HttpRequest {
  std::string url;
  std::string bearer_token;  // sent as "authorization: Bearer ..." when not empty
  bool head = false;         // HEAD: redirects are not followed (their headers are the answer)
  HttpDownload* download = nullptr;
  std::string user_agent;
};

// Never throws for a failed transfer (see HttpResponse::transport_error); throws actcap::Error only when the
// request cannot even start.
HttpResponse http_request(const HttpRequest& request);
// False when built without libcurl.
bool http_available();

}  // namespace actcap
