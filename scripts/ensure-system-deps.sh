#!/usr/bin/env bash
# Installs the system packages the process executor relies on. Idempotent: does nothing
# when they are present. Only bubblewrap for now (the job sandbox, see DESIGN.md §3).
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
  echo "bubblewrap: already installed ($(command -v bwrap))"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bubblewrap: missing; run this script as root (or: sudo apt-get install -y bubblewrap)" >&2
  echo "  without it, jobs run as a separate user (root) or unsandboxed (non-root)" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "bubblewrap: missing and apt-get is not available; install it with your package manager" >&2
  exit 1
fi

echo "bubblewrap: missing; installing with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
echo "bubblewrap: installed ($(command -v bwrap))"
