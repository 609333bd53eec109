#!/usr/bin/env bash
# Debian packages the tests use besides Go and Python: busybox, so the recipe scripts
# are also run under `busybox sh` with only busybox applets, as in a busybox debug image;
# tcpdump, so the capture recipe captures for real on the loopback.
set -euo pipefail
missing=()
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prereqs: please install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "prereqs: installing ${missing[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
