#!/bin/sh
# Fetches the two jslib modules the k6 scripts import into this folder, once: afterwards a run
# needs no internet (k6 reads them as local files). They are not committed because the jslib
# (github.com/grafana/jslib.k6.io) is AGPL-3.0 and this repository is MIT; *.js here is
# git-ignored. Each file is checked against its SHA-256 (the upstream file at that version).
#   sh k6/vendor/fetch.sh          needs curl and sha256sum; safe to run again
# test/unit/k6-scripts.test.ts holds this list equal to the scripts' imports and the .d.ts types.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)

fetch() { # file url sha256
  if [ -f "$dir/$1" ] && echo "$3  $dir/$1" | sha256sum -c - >/dev/null 2>&1; then
    echo "k6/vendor/$1: present"
    return
  fi
  curl -fsSL --retry 3 -o "$dir/$1.tmp" "$2"
  if ! echo "$3  $dir/$1.tmp" | sha256sum -c - >/dev/null 2>&1; then
    echo "k6/vendor/$1: $2 does not have the expected SHA-256 $3 (got $(sha256sum "$dir/$1.tmp" | cut -c1-64))" >&2
    rm -f "$dir/$1.tmp"
    exit 1
  fi
  mv "$dir/$1.tmp" "$dir/$1"
  echo "k6/vendor/$1: fetched"
}

fetch http-instrumentation-tempo-1.0.1.js https://jslib.k6.io/http-instrumentation-tempo/1.0.1/index.js e1f3622534b36f2a99536d8a81f1518a268522a6f9bbe39116f2229ff47d22d2
fetch k6-summary-0.1.0.js https://jslib.k6.io/k6-summary/0.1.0/index.js 5d6c3fe92dc66eee1a54390d3a62cbceb75028ecc3ffa9709720afbc2a2ffe34
