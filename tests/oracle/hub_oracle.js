// HF's own JS hub client (@huggingface/hub) on the same cache as actcap, against the tests' loopback hub:
//   node hub_oracle.js populate HUB_URL CACHE_DIR REPO         snapshotDownload; prints the snapshot folder
//   node hub_oracle.js read HUB_URL CACHE_DIR REPO FILE...     prints JSON: scanCacheDir's view of the repo and
//                                                              the path downloadFileToCacheDir gives each file
"use strict";
const path = require("path");
const { snapshotDownload, downloadFileToCacheDir, scanCacheDir } = require("@huggingface/hub");

async function main() {
  const [mode, hubUrl, cacheDir, repo, ...files] = process.argv.slice(2);
  const model = { type: "model", name: repo };
  if (mode === "populate") {
    console.log(await snapshotDownload({ repo: model, cacheDir, hubUrl }));
    return;
  }
  if (mode !== "read") throw new Error(`unknown mode ${mode}`);
  const cache = await scanCacheDir(cacheDir);
  const cached = cache.repos.find((r) => r.id.name === repo);
  const paths = {};
  for (const file of files) paths[file] = await downloadFileToCacheDir({ repo: model, path: file, cacheDir, hubUrl });
  console.log(JSON.stringify({
    warnings: cache.warnings.map(String),
    revisions: cached ? cached.revisions.map((r) => ({ commit: r.commitOid, refs: r.refs,
                                                       files: r.files.map((f) => path.relative(r.path, f.path)).sort() })) : [],
    paths,
  }));
}

main().catch((e) => {
  console.error(`hub_oracle: ${e.message}`);
  process.exit(1);
});
