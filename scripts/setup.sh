#!/usr/bin/env bash
# Installs every Debian package listed in scripts/packages.txt that is not installed yet. Idempotent: on a machine
# that has them all it changes nothing and does not touch the network.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="${here}/packages.txt"

mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "${list}" | grep -v '^$')

missing=()
for pkg in "${wanted[@]}"; do
  # dpkg-query exits non-zero for packages it has never heard of; a removed-but-configured package reports
  # something other than "installed", so both count as missing.
  status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
  [[ "${status}" == "installed" ]] || missing+=("${pkg}")
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#wanted[@]} packages from scripts/packages.txt are installed"
  exit 0
fi

echo "setup: ${#missing[@]} package(s) missing: ${missing[*]}"
if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "setup: not root and no password-less sudo; run this as root, then rerun your command:" >&2
  echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# env, not export: sudo drops the caller's environment by default.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
