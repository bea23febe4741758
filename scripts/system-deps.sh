#!/usr/bin/env bash
# Debian packages the test tiers use (iproute2 for network namespaces and
# veth pairs, ping). Installed only when missing and only when we are root;
# a tier whose tools are absent skips and says why.
set -eu
want=()
command -v ip >/dev/null 2>&1 || want+=(iproute2)
command -v ping >/dev/null 2>&1 || want+=(iputils-ping)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not root or no apt-get; missing: ${want[*]} (their test tiers will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || echo "system-deps: could not install ${want[*]} (their test tiers will skip)" >&2
