#!/usr/bin/env bash
# Runs the README's test command on the TFX 1.21 stack, inside a Debian 13 chroot (Python 3.13, glibc 2.41) built
# from Debian's packages, with this working tree copied in. CI (.ci/run) runs it after the native suite on TFX 1.16.
# Needs root (chroot, mount) and debootstrap (installed with apt when missing). The chroot stays in
# /var/tmp/mtl-debian13 (MTL_CHROOT chooses another folder), so a second run reuses it and its environment.
# Usage: scripts/test-tfx121.sh [pytest arguments]   (default: tests)
set -euo pipefail
cd "$(dirname "$0")/.."
root="${MTL_CHROOT:-/var/tmp/mtl-debian13}"
mirror="${MTL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

[ "$(id -u)" = 0 ] || { echo "test-tfx121.sh: needs root for chroot and mount: run it with sudo" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
# The host's name service, pip settings and certificate bundles (a proxy's CA among them), so apt, pip and uv
# reach the same package registries.
host_files() {
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  for file in /etc/pip.conf /etc/ssl/certs/ca-certificates.crt "${SSL_CERT_FILE:-}" "${PIP_CERT:-}"; do
    if [ -f "$file" ]; then mkdir -p "$root$(dirname "$file")" && cp "$file" "$root$file"; fi
  done
}
unmount() { umount -R "$root/dev" "$root/proc" "$root/sys" 2>/dev/null || true; }
unmount  # what an interrupted run left mounted: never remove or mount over the host's /dev
if [ ! -e "$root/.mtl-ready" ]; then
  # g++ and the headers build pyfarmhash, which has no wheel for Python 3.13; chromium runs the HTML report's test
  # (installed by apt in the chroot: debootstrap cannot configure its desktop dependencies).
  rm -rf --one-file-system "$root"
  start=$SECONDS
  { debootstrap --variant=minbase --include=python3,python3-venv,python3-dev,g++,ca-certificates trixie \
      "$root" "$mirror" && host_files && chroot "$root" apt-get install -y --no-install-recommends chromium; } \
    >"$root.log" 2>&1 || { echo "test-tfx121.sh: building the chroot failed, see $root.log" >&2; exit 1; }
  touch "$root/.mtl-ready"
  echo "Debian 13 chroot built in $((SECONDS - start)) s: $root"
fi

host_files
trap unmount EXIT
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"  # /dev/shm for Beam's worker processes

# The working tree (tracked and new files, as git sees them), over a fresh /repo that keeps its .venv.
mkdir -p "$root/repo"
find "$root/repo" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
git ls-files -z --cached --others --exclude-standard \
  | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ \
  | tar --null -T - -cf - | tar -xf - -C "$root/repo"

passthrough=()
while IFS='=' read -r name _; do passthrough+=("$name=${!name}"); done \
  < <(env | grep -E '^(PIP_|UV_|SSL_CERT_|REQUESTS_CA_BUNDLE=|HTTPS?_PROXY=|NO_PROXY=|https?_proxy=|no_proxy=)' || true)
[ $# -gt 0 ] || set -- tests
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "${passthrough[@]}" \
  bash -c 'cd /repo && bash scripts/setup.sh && .venv/bin/python -m pytest "$@"' _ "$@"
