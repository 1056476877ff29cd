#!/usr/bin/env bash
# Installs the Debian packages the test nodes need when they are missing: containerd and runc (the
# container runtime), containernetworking-plugins (the loopback CNI plugin that makes a node
# Ready) and busybox-static (the shell of the test image); and libfaketime, with which a test runs
# the operator on a clock ahead of the API server's. Runs as root only (CI does); otherwise it
# names what is missing, and the node tests fail with the same message until it is installed.
# With --check: prints what is missing (nothing when all is there), installs nothing.
set -euo pipefail
declare -A files=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/loopback
  [busybox-static]=/bin/busybox
)
missing=()
for package in containerd runc containernetworking-plugins busybox-static; do
  [ -e "${files[$package]}" ] || missing+=("$package")
done
# Its directory is the machine's multiarch triplet.
compgen -G "/usr/lib/*/faketime/libfaketimeMT.so.1" >/dev/null || missing+=(libfaketime)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then
  echo "missing Debian packages: ${missing[*]}"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "testenv: the test nodes need the Debian packages ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "testenv: installing ${missing[*]} for the tests"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
