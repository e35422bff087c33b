#!/usr/bin/env bash
# Installs what ldap-scim's demo and tests need on Debian/Ubuntu: OpenLDAP's slapd and client tools, with --samba
# also Samba's AD DC for the Active Directory tests (apt; nothing is started or configured system-wide), then the
# Node packages (npm ci). Safe to run again. Uses sudo for apt when not run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "setup: ldap-scim needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# slapd + ldap-utils for the OpenLDAP demo and tests; Samba's AD DC for the Active Directory tests.
packages=()
{ command -v slapd >/dev/null || [ -x /usr/sbin/slapd ]; } || packages+=(slapd)
command -v ldapmodify >/dev/null || packages+=(ldap-utils)
if [ "${1:-}" = "--samba" ]; then
  { command -v samba >/dev/null || [ -x /usr/sbin/samba ]; } || packages+=(samba samba-ad-dc krb5-user winbind ldb-tools)
fi
# promtool lets the unit tests check deploy/prometheus/ldap-scim-alerts.yml the way Prometheus loads it (under CI
# they fail without it). Debian ships it only inside the server package: ~20 MB to fetch, ~15 s, ~320 MB on disk
# (mostly time zone data for its web UI). Without recommends, so that no node exporter comes along.
lean=()
command -v promtool >/dev/null || lean+=(prometheus)
if [ ${#packages[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  all=("${packages[@]}" "${lean[@]}")
  echo "setup: installing ${all[*]} with apt-get"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  [ ${#packages[@]} -eq 0 ] || "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  if [ ${#lean[@]} -gt 0 ]; then
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${lean[@]}" >/dev/null
    # Only promtool is wanted: where systemd started the package's own Prometheus server, stop and disable it.
    [ ! -d /run/systemd/system ] || "${as_root[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

echo "setup: installing Node packages (npm ci)"
npm ci --no-audit --no-fund
