#!/usr/bin/env bash
# Installs what ldap-scim's demo and tests need on Debian/Ubuntu: OpenLDAP's slapd and client tools (apt), then the
# Node packages (npm ci). Safe to run again. Uses sudo for apt when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: ldap-scim needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

if ! command -v slapd >/dev/null && [ ! -x /usr/sbin/slapd ] || ! command -v ldapmodify >/dev/null; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "setup: installing slapd and ldap-utils with apt-get"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils >/dev/null
fi

echo "setup: installing Node packages (npm ci)"
npm ci --no-audit --no-fund
