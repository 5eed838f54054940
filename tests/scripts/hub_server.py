"""A loopback-only stand-in for the Hugging Face hub, for the download tests: the endpoints and headers that
huggingface_hub and @huggingface/hub use (revision info, tree, paths-info, resolve with ETag / X-Repo-Commit /
X-Linked-Etag / X-Linked-Size, a 302 to a "CDN" for LFS files, Range requests) over folders of files.

  hub_server.py --port-file F --log L --repo org/name=FOLDER [--repo ...] [--throttle BYTES_PER_S]
                [--corrupt FILE] [--status org/name=CODE] [--gated org/name --token hf_x]
                [--hostile-sibling NAME] [--drop-after BYTES]

Every request is logged to L as one JSON line {method, path, range, status, sent} just before its last bytes are
sent, or when it is cut short (sent: the body bytes written when the client went away mid-file)."""
import argparse
import hashlib
import http.server
import json
import os
import re
import threading
import time
import urllib.parse

args = None
log_lock = threading.Lock()


def commit_of(repo_id):
    return hashlib.sha1(repo_id.encode()).hexdigest()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(path):
    return path.endswith(".safetensors") or path.endswith(".bin")


class Repo:
    def __init__(self, repo_id, folder):
        self.id, self.folder, self.commit = repo_id, folder, commit_of(repo_id)
        self.files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))

    def read(self, path):
        with open(os.path.join(self.folder, path), "rb") as f:
            return f.read()

    def entry(self, path):
        data = self.read(path)
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if is_lfs(path):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def revision(self, rev):
        return self.commit if rev in ("main", "v1.0", self.commit) else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def finish_log(self, status, sent):
        with log_lock, open(args.log, "a") as log:
            log.write(json.dumps({"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                                  "status": status, "sent": sent}) + "\n")

    def reply(self, status, headers=None, body=b"", send_body=True):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # Logged before the last bytes go out, so that the log is complete once the client has its answer.
        self.finish_log(status, len(body) if self.command != "HEAD" else 0)
        if send_body and self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message="", commit=None):
        headers = {"X-Error-Code": code, "X-Error-Message": message or code}
        if commit:
            headers["X-Repo-Commit"] = commit
        self.reply(status, headers, json.dumps({"error": message or code}).encode())

    def repo(self, repo_id):
        if repo_id in args.status:
            self.error(int(args.status[repo_id]), "ServerError", "forced status")
            return None
        if repo_id in args.gated and self.headers.get("Authorization") != "Bearer " + (args.token or ""):
            self.error(401, "GatedRepo", "Access to model %s is restricted" % repo_id)
            return None
        repo = args.repos.get(repo_id)
        if repo is None:
            self.error(404, "RepoNotFound", "Repository not found")
        return repo

    def send_bytes(self, data, headers, throttle):
        """Sends data (or the Range asked for) with 200/206, throttled to `throttle` bytes/s if set (None: not from
        the CDN)."""
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        status = 200
        end = len(data)
        if match:
            start = int(match.group(1))
            end = int(match.group(2)) + 1 if match.group(2) else len(data)
            if start >= len(data):
                return self.reply(416, {"Content-Range": "bytes */%d" % len(data)})
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, end - 1, len(data))
        body = data[start:end]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = 0
        logged = False
        drop_at = None
        if args.drop_after and throttle is not None and self.command == "GET":
            with log_lock:
                drop_at, args.drop_after = args.drop_after, 0  # only the first CDN download is cut
        try:
            if self.command != "HEAD":
                chunk = 16384 if throttle or drop_at else len(body) or 1
                while sent < len(body):
                    if drop_at is not None and sent >= drop_at:
                        self.close_connection = True  # a network failure mid-file: fewer bytes than announced
                        return
                    if sent + chunk >= len(body):  # the last chunk: logged first (see reply)
                        logged = True
                        self.finish_log(status, len(body))
                    self.wfile.write(body[sent:sent + chunk])
                    sent += len(body[sent:sent + chunk])
                    if throttle:
                        self.wfile.flush()
                        time.sleep(chunk / throttle)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (killed): the log says how much it got
        finally:
            if not logged:
                self.finish_log(status, sent)

    def file_body(self, repo, path):
        data = repo.read(path)
        if path == args.corrupt:
            data = data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:]
        return data

    def repo_at(self, repo_id, revision):
        """(repo, commit), or (None, None) once the error answer (forced status, 401, 404) has been sent."""
        repo = self.repo(repo_id)
        if repo is None:
            return None, None
        commit = repo.revision(revision)
        if commit is None:
            self.error(404, "RevisionNotFound", "Invalid rev id: " + revision)
            return None, None
        return repo, commit

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
        if m:
            repo, commit = self.repo_at(m.group(1), m.group(2))
            if repo is None:
                return
            info = {"id": repo.id, "modelId": repo.id, "sha": commit,
                    "siblings": [{"rfilename": f} for f in repo.files + args.hostile_sibling]}
            return self.reply(200, {"Content-Type": "application/json"}, json.dumps(info).encode())
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)/?", path)
        if m:
            repo, _ = self.repo_at(m.group(1), m.group(2))
            if repo is None:
                return
            body = json.dumps([repo.entry(f) for f in repo.files]).encode()
            return self.reply(200, {"Content-Type": "application/json"}, body)
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            repo, commit = self.repo_at(m.group(1), m.group(2))
            if repo is None:
                return
            name = m.group(3)
            if name not in repo.files:
                return self.error(404, "EntryNotFound", "Entry not found", commit)
            entry = repo.entry(name)
            if "lfs" in entry:
                sha = entry["lfs"]["oid"]
                cdn = "http://127.0.0.1:%d/cdn/%s/%s?sha=%s" % (self.server.server_port, repo.id, name, sha)
                return self.reply(302, {"Location": cdn, "X-Repo-Commit": commit, "ETag": '"%s"' % entry["oid"],
                                        "X-Linked-Etag": '"%s"' % sha, "X-Linked-Size": str(entry["size"])})
            headers = {"ETag": '"%s"' % entry["oid"], "X-Repo-Commit": commit, "Content-Type": "text/plain"}
            return self.send_bytes(self.file_body(repo, name), headers, None)
        m = re.fullmatch(r"/cdn/([^/]+/[^/]+)/(.+)", path)
        if m and m.group(1) in args.repos and m.group(2) in args.repos[m.group(1)].files:
            repo = args.repos[m.group(1)]
            headers = {"ETag": '"%s"' % repo.entry(m.group(2))["lfs"]["oid"]}
            return self.send_bytes(self.file_body(repo, m.group(2)), headers, args.throttle)
        self.error(404, "NotFound", "no such endpoint")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/paths-info/([^/]+)", urllib.parse.unquote(self.path))
        if not m:
            return self.error(404, "NotFound", "no such endpoint")
        repo, commit = self.repo_at(m.group(1), m.group(2))
        if repo is None:
            return
        paths = json.loads(body).get("paths", [])
        entries = [dict(repo.entry(p), lastCommit={"id": commit, "title": "x", "date": "2026-01-01T00:00:00.000Z"})
                   for p in paths if p in repo.files]
        self.reply(200, {"Content-Type": "application/json"}, json.dumps(entries).encode())


def main():
    global args
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--repo", action="append", default=[])
    parser.add_argument("--throttle", type=int, default=0)
    parser.add_argument("--drop-after", type=int, default=0)  # cut the first CDN download after that many bytes
    parser.add_argument("--corrupt")
    parser.add_argument("--status", action="append", default=[])
    parser.add_argument("--gated", action="append", default=[])
    parser.add_argument("--token")
    parser.add_argument("--hostile-sibling", action="append", default=[])  # a listed name that is not a file
    args = parser.parse_args()
    args.repos = {}
    for spec in args.repo:
        repo_id, folder = spec.split("=", 1)
        args.repos[repo_id] = Repo(repo_id, folder)
    args.status = dict(spec.split("=", 1) for spec in args.status)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
