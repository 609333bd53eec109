#!/usr/bin/env bash
# Debian packages the tests use besides Go and Python:
# - busybox, so the recipe scripts are also run under `busybox sh` with only busybox
#   applets, as in a busybox debug image; tcpdump, so the capture recipe captures for real;
# - for the real node (hack/node.sh): libseccomp-dev and pkg-config to build runc with
#   seccomp, dnsmasq-base for the pods' resolver, openssl for the kubelet's certificate,
#   iproute2 for the pod bridge; and for its images (hack/images): jattach, gcc (a static
#   pause), Debian's python3.11 and a JDK 17 (javac), which go into the images.
set -euo pipefail

# busybox-static's .deb (never installed): the images (hack/images) are built from it, and
# their unit test (tests/unit/test_image_builder.py) downloads nothing itself.
debs=${KD_CACHE:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)/.cache}/images/debs
if ! compgen -G "$debs/busybox-static_*.deb" >/dev/null && command -v apt-get >/dev/null 2>&1; then
  mkdir -p "$debs"
  if ! (cd "$debs" && apt-get download busybox-static >/dev/null 2>&1); then
    [ "$(id -u)" -eq 0 ] && apt-get update -qq >/dev/null 2>&1
    (cd "$debs" && apt-get download busybox-static >/dev/null 2>&1) || echo "prereqs: could not download busybox-static into $debs" >&2
  fi
fi

# command -> package
declare -A want=(
  [busybox]=busybox [tcpdump]=tcpdump [dnsmasq]=dnsmasq-base [openssl]=openssl [ip]=iproute2
  [jattach]=jattach [gcc]=gcc [pkg-config]=pkg-config [/usr/bin/python3.11]=python3.11
  [/usr/lib/jvm/java-17-openjdk-amd64/bin/javac]=openjdk-17-jdk-headless
)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prereqs: please install ${missing[*]} (Debian/Ubuntu: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "prereqs: installing ${missing[*]}" >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
