#!/usr/bin/env bash
# Builds the native tools the end-to-end tests use, from the Go module proxy, once; the binaries
# are cached outside the repo (never committed), keyed by the pinned go.mod/go.sum in tools/.
#   jaeger: github.com/jaegertracing/jaeger/cmd/jaeger (Apache-2.0; v1.x tags carry Jaeger v2)
# Prints the directory that holds the binaries. BLOG_APP_TOOLS overrides the cache location.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${BLOG_APP_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/blog_app/tools}
mkdir -p "$cache"
export PATH="/usr/local/go/bin:$PATH"

build() { # name module-dir package
  local name=$1 dir=$2 pkg=$3
  local key
  key=$(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)
  local bin="$cache/$name-$key"
  if [ ! -x "$bin" ]; then
    echo "building $name ($pkg) -> $bin" >&2
    (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" "$pkg")
    mv "$bin.tmp" "$bin"
  fi
  ln -sf "$bin" "$cache/$name"
}

build jaeger "$here/tools/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
echo "$cache"
