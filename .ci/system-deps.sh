#!/usr/bin/env bash
# Debian packages the test suite drives as real peers; installed only when missing, so a warm
# machine pays nothing. Each line says which tests need it.
set -euo pipefail
PACKAGES=(
  chromium   # tests/e2e/test_docs_browser.py: /docs in headless Chromium
  nginx      # tests/e2e/test_nginx_replicas.py: the deploy/ nginx config in front of 3 replicas
  wrk        # bench/loadtest: `make loadtest` and its short CI run
  r-base-core      # tests/e2e/test_readme_clients.py: the README's R example, run with Rscript
  r-cran-httr2     # the same R example's HTTP client (Debian bookworm: httr2 0.2.2)
  r-cran-jsonlite  # httr2's JSON bodies (req_body_json, resp_body_json) in the same R example
)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js (>= 18, for fetch) and Java 17 (openapi-generator) come with the machine; say so early.
for tool in node npm java; do
  command -v "$tool" >/dev/null || echo "system-deps: warning: $tool not found" >&2
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
