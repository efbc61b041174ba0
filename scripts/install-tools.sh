#!/usr/bin/env bash
# Builds the native tools the end-to-end tests use, from the Go module proxy, once; the binaries
# are cached outside the repo (never committed), keyed by the pinned go.mod/go.sum in tools/.
#   jaeger: github.com/jaegertracing/jaeger/cmd/jaeger (Apache-2.0; v1.x tags carry Jaeger v2)
#   otelcol-blog: go.opentelemetry.io/collector/cmd/builder (Apache-2.0) + otel/builder-config.yaml
#   weed: github.com/seaweedfs/seaweedfs/weed (Apache-2.0), the S3-compatible store of the scale tests
# and installs Debian's prometheus, chromium, nginx and valgrind packages if they are missing.
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
build weed "$here/tools/seaweedfs" github.com/seaweedfs/seaweedfs/weed

# otelcol-blog: the OpenTelemetry Collector Builder (pinned by tools/otelcol/go.mod) compiles a
# collector with exactly the components in otel/builder-config.yaml; keyed by all three files.
build_otelcol() {
  local dir=$here/tools/otelcol manifest=$here/otel/builder-config.yaml
  local key
  key=$(cat "$manifest" "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)
  local bin="$cache/otelcol-blog-$key"
  if [ ! -x "$bin" ]; then
    echo "building otelcol-blog ($manifest) -> $bin" >&2
    local work
    # Inside the cache: the final mv is then a rename, atomic for a concurrent reader.
    work=$(mktemp -d "$cache/.otelcol-build.XXXXXX")
    (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$work/builder" go.opentelemetry.io/collector/cmd/builder)
    # output_path in the manifest is relative: the generated sources stay in $work.
    # The module proxy here serves these two modules but the checksum database answers 404 for
    # them (seen 2026-12-01), so they alone skip that lookup; their hashes still go into the
    # generated go.sum at download. Everything else is checked as usual.
    (cd "$work" && GONOSUMDB=github.com/open-telemetry/opentelemetry-collector-contrib/receiver/mysqlreceiver,github.com/DataDog/datadog-agent/pkg/obfuscate \
      ./builder --config "$manifest") >&2
    mv "$work/otelcol-blog/otelcol-blog" "$bin"
    rm -rf "$work"
  fi
  ln -sf "$bin" "$cache/otelcol-blog"
}
build_otelcol

# Prometheus from Debian (2.42: no OTLP receiver, so the tests scrape the collector's exporter).
# The package's own service is not wanted: tests start their own instance on a loopback port.
if [ ! -x /usr/bin/prometheus ]; then
  echo "installing prometheus (Debian package)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >&2
fi

# Chromium from Debian for test/browser (driven by playwright-core, which downloads no browser:
# npm's playwright would fetch its own build, which cannot be had here).
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2
fi

# nginx from Debian: the load balancer in front of the replicas (test/e2e/scale). Only the
# binary is used; the tests run it in the foreground with their own config, pid and log paths.
if [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx (Debian package)" >&2
  apt-get update >&2
  # policy-rc.d answering 101 keeps the package from starting its own service on port 80.
  # An existing one (Docker images have it) is left as it is.
  policy=/usr/sbin/policy-rc.d made=""
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx >&2 || { [ -z "$made" ] || rm -f "$policy"; exit 1; }
  [ -z "$made" ] || rm -f "$policy"
fi

# valgrind from Debian: `npm run bench:instructions` counts instructions per request under
# callgrind (test/e2e/bench/instructions.test.ts).
if ! command -v callgrind_control >/dev/null; then
  echo "installing valgrind (Debian package)" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind >&2
fi

echo "$cache"
