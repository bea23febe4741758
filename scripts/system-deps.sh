#!/usr/bin/env bash
# Debian packages the setup and the test tiers use: python3-venv when the
# Python given as $1 cannot make a virtual environment (Debian's python3 lacks
# ensurepip without it), iproute2 for network namespaces and veth pairs, ping,
# and for the mininet tier mininet (without its recommends: Open vSwitch's
# services cannot start everywhere) and ethtool.
# Installed only when missing and only when we are root; a tier whose tools
# are absent skips and says why.
set -eu
py="${1:-python3}"
want=()
# Debian's venv package is named after the interpreter: python3.11-venv, ...
if ! "$py" -c "import ensurepip" >/dev/null 2>&1; then
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
    want+=("python${ver:-3}-venv")
fi
command -v ip >/dev/null 2>&1 || want+=(iproute2)
command -v ping >/dev/null 2>&1 || want+=(iputils-ping)
command -v mnexec >/dev/null 2>&1 || want+=(mininet)
command -v ethtool >/dev/null 2>&1 || want+=(ethtool)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: not root or no apt-get; missing: ${want[*]} (their test tiers will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null \
    || echo "system-deps: could not install ${want[*]} (their test tiers will skip)" >&2
