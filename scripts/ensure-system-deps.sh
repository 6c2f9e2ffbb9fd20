#!/usr/bin/env bash
# Installs the system packages the tests rely on. Idempotent: does nothing when they are
# present. bubblewrap (the job sandbox, see DESIGN.md §3), slirp4netns (the jobs' isolated
# network: the outside without the host's loopback, DESIGN.md §3.2) and Chromium (the
# dashboard tests, driven by playwright-core; never a downloaded browser).
set -euo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/lib/chromium/chromium}"
missing=()
command -v bwrap >/dev/null 2>&1 && echo "bubblewrap: already installed ($(command -v bwrap))" || missing+=(bubblewrap)
command -v slirp4netns >/dev/null 2>&1 && echo "slirp4netns: already installed ($(command -v slirp4netns))" || missing+=(slirp4netns)
[ -x "$CHROMIUM_PATH" ] && echo "chromium: already installed ($CHROMIUM_PATH)" || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing: ${missing[*]}; run this script as root (or: sudo apt-get install -y ${missing[*]})" >&2
  echo "  without bubblewrap jobs run as a separate user (root) or unsandboxed (non-root);" >&2
  echo "  without slirp4netns jobs get no network (--job-network isolated falls back to none);" >&2
  echo "  without chromium the dashboard tests fail" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]}, and apt-get is not available; install them with your package manager" >&2
  exit 1
fi

echo "missing: ${missing[*]}; installing with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
