#!/usr/bin/env bash
# Build a vehicle-host device image: a Debian bookworm root filesystem (mmdebstrap) with vehicle-host
# in a venv at /opt/vehicle-host, its systemd units, udev rules and networkd files, the sample
# mini-apps and /etc/vehicle-host/host.toml. See image/README.md.
#
#   image/build.sh --arch amd64|arm64 --out DIR [--flavour engineering|production] [--headless]
#                  [--cache DIR] [--overlay DIR]... [--enable UNIT]...
#
# Output in DIR: rootfs.ext4 (label vh-root); for amd64 also vmlinuz + initrd.img (Debian's generic
# kernel and a busybox initramfs, for qemu) and the CAN modules of that kernel inside the rootfs.
# Two caches under --cache (default .cache/image): the Debian base with the Python dependencies
# (keyed by this script, the package list and pyproject.toml) and the kernel. DIR/image.key records
# the inputs of the last build; an unchanged tree is not built again.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ARCH=amd64 OUT="" FLAVOUR=engineering HEADLESS=0 CACHE="$ROOT/.cache/image"
OVERLAYS=() ENABLE=()
die() { echo "image/build.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --flavour) FLAVOUR=${2:?}; shift 2 ;;
    --headless) HEADLESS=1; shift ;;
    --cache) CACHE=${2:?}; shift 2 ;;
    --overlay) OVERLAYS+=("$(cd "${2:?}" && pwd)"); shift 2 ;;
    --enable) ENABLE+=("${2:?}"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ARCH" in amd64|arm64) ;; *) die "--arch must be amd64 or arm64" ;; esac
case "$FLAVOUR" in engineering|production) ;; *) die "--flavour must be engineering or production" ;; esac
[ -n "$OUT" ] || die "--out DIR is required"
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap, chroot and mke2fs -d need it), e.g. sudo $0 $*"
for tool in mmdebstrap mke2fs cpio depmod modprobe busybox; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install mmdebstrap e2fsprogs cpio kmod busybox-static"
done
HOST_ARCH=$(dpkg --print-architecture)
if [ "$ARCH" != "$HOST_ARCH" ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-${ARCH/arm64/aarch64}" ]; then
  die "building $ARCH on $HOST_ARCH needs emulation: apt-get install qemu-user-static binfmt-support arch-test"
fi
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)
T0=$SECONDS
step() { echo "[image $((SECONDS - T0))s] $*"; }

PKGS=(systemd systemd-sysv udev kmod iproute2 python3 python3-venv bubblewrap libseccomp2 libudev1
      ca-certificates can-utils)
[ "$HEADLESS" = 1 ] || PKGS+=(dbus cage python3-gi gir1.2-gtk-3.0 gir1.2-webkit2-4.1 fonts-dejavu-core)
REQS=$("$PY" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
  "$ROOT/pyproject.toml")
BASE_KEY=$( { cat "$0"; echo "$ARCH ${PKGS[*]}"; echo "$REQS"; } | sha256sum | cut -c1-16)
tree_hash() {  # content and names of every input file, caches and bytecode excluded
  (cd "$ROOT" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
}
IMAGE_KEY=$( { echo "$BASE_KEY $FLAVOUR $HEADLESS ${ENABLE[*]:-}"; tree_hash image systemd examples vehicle_host pyproject.toml
  for o in "${OVERLAYS[@]}"; do (cd "$o" && find . -type f -print0 | sort -z | xargs -0 sha256sum); done; } | sha256sum | cut -c1-16)
if [ -f "$OUT/rootfs.ext4" ] && [ "$(cat "$OUT/image.key" 2>/dev/null)" = "$IMAGE_KEY" ]; then
  step "image $IMAGE_KEY is up to date in $OUT"; exit 0
fi
rm -f "$OUT/image.key"
WORK=$(mktemp -d "$OUT/.build.XXXXXX")
cleanup() { mountpoint -q "$WORK/rootfs/proc" && umount "$WORK/rootfs/proc"; rm -rf "$WORK"; }
trap cleanup EXIT

# --- Python wheels: the project (always) and its dependencies (cached; native builds only) ----------
mkdir -p "$WORK/src" "$WORK/dist"
tar -C "$ROOT" -cf - --exclude=__pycache__ pyproject.toml README.md vehicle_host | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" 2>&1 | grep -v "^WARNING: Location" || true
WHEEL=$(ls "$WORK"/dist/vehicle_host-*.whl) || die "building the vehicle-host wheel failed"
step "built $(basename "$WHEEL")"
WHEELS=""
if [ "$ARCH" = "$HOST_ARCH" ]; then
  WHEELS="$CACHE/wheels-$ARCH-$(echo "$REQS" | sha256sum | cut -c1-16)"
  if [ ! -d "$WHEELS" ]; then
    echo "$REQS" > "$WORK/requirements.txt"
    "$PY" -m pip wheel -q -w "$WHEELS.tmp" -r "$WORK/requirements.txt" 2>&1 | grep -v "^WARNING: Location" || true
    ls "$WHEELS.tmp"/*.whl >/dev/null 2>&1 || die "downloading the dependency wheels failed"
    mv "$WHEELS.tmp" "$WHEELS"
    step "dependency wheels cached in $WHEELS"
  fi
fi

# --- Debian base with the venv and the dependencies (cached) ------------------------------------------
BASE="$CACHE/base-$ARCH-$BASE_KEY.tar"
if [ ! -f "$BASE" ]; then
  step "mmdebstrap bookworm $ARCH: ${PKGS[*]}"
  srcs=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources; do [ -s "$f" ] && srcs+=("$f"); done
  [ ${#srcs[@]} -gt 0 ] || srcs=("deb http://deb.debian.org/debian bookworm main")
  echo "$REQS" > "$WORK/requirements.txt"
  export VH_REQS="$WORK/requirements.txt" VH_WHEELS="$WHEELS"
  mmdebstrap --variant=apt --architectures="$ARCH" --include="$(IFS=,; echo "${PKGS[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --customize-hook="$HERE/lib/base-hook.sh \"\$1\"" \
    --format=tar bookworm "$BASE.tmp" "${srcs[@]}" </dev/null >"$WORK/mmdebstrap.log" 2>&1 \
    || { tail -40 "$WORK/mmdebstrap.log"; die "mmdebstrap failed"; }
  mv "$BASE.tmp" "$BASE"
  rm -f $(ls "$CACHE"/base-"$ARCH"-*.tar | grep -v "$BASE_KEY")
  step "base cached: $(du -h "$BASE" | cut -f1)"
else
  step "reusing base $(basename "$BASE")"
fi

# --- the image: base + vehicle-host + units + apps + config -------------------------------------------
R="$WORK/rootfs"
mkdir "$R"
tar -C "$R" --numeric-owner -xpf "$BASE"
cp "$WHEEL" "$R/tmp/"
chroot "$R" /opt/vehicle-host/bin/python -m pip install -q --no-deps --no-index --no-cache-dir \
  "/tmp/$(basename "$WHEEL")"
rm -f "$R/tmp/"*.whl
step "installed vehicle-host into /opt/vehicle-host"
S="$ROOT/systemd"
install -m 0644 "$S"/system/*.service "$R/usr/lib/systemd/system/"
install -D -m 0644 "$S/sysusers.d/vehicle-host.conf" "$R/usr/lib/sysusers.d/vehicle-host.conf"
install -D -m 0644 "$S/tmpfiles.d/vehicle-host.conf" "$R/usr/lib/tmpfiles.d/vehicle-host.conf"
install -D -m 0644 "$S/udev/rules.d/80-vehicle-host.rules" "$R/usr/lib/udev/rules.d/80-vehicle-host.rules"
install -m 0644 "$S/network/80-can0.network" "$S/network/80-slcan.network" "$R/usr/lib/systemd/network/"
CHANNEL=can0
if [ "$FLAVOUR" = engineering ]; then
  install -m 0644 "$S/network/80-vcan0.netdev" "$S/network/80-vcan0.network" "$R/usr/lib/systemd/network/"
  CHANNEL=vcan0
fi
mkdir -p "$R/etc/vehicle-host" "$R/var/lib/vehicle-host"
cat > "$R/etc/vehicle-host/host.toml" <<TOML
# vehicle-host configuration ($FLAVOUR image). See the README's "Plugins" section.
[host]
apps = "/var/lib/vehicle-host/bundles/apps"
state = "/var/lib/vehicle-host/state"

[plugins.can_diagnostics]
interface = "socketcan"
channel = "$CHANNEL"
TOML
# the sample apps go in as signed-off bundles into the content-addressed cache, as updates would
# install them (each can be rolled back on the device with `vehicle-host bundle rollback`)
for app in "$ROOT"/examples/*/; do
  "$PY" -m vehicle_host bundle pack "$app" -o "$WORK/app.vhb" >/dev/null
  "$PY" -m vehicle_host bundle install "$WORK/app.vhb" --cache "$R/var/lib/vehicle-host/bundles" >/dev/null
done
chmod -R u=rwX,go=rX "$R/var/lib/vehicle-host/bundles"
systemd-sysusers --root="$R" >/dev/null
systemd-tmpfiles --root="$R" --create vehicle-host.conf
echo headunit > "$R/etc/hostname"
echo 'LABEL=vh-root / ext4 rw,noatime 0 1' > "$R/etc/fstab"
units=(systemd-networkd.service vehicle-host-hub.service)
[ "$FLAVOUR" = engineering ] && units+=(vehicle-host-simulator@vcan0.service)
[ "$HEADLESS" = 1 ] || { units+=(vehicle-host-shell.service); systemctl --root="$R" set-default graphical.target; }
for o in "${OVERLAYS[@]}"; do cp -a "$o/." "$R/"; done
units+=("${ENABLE[@]}")
systemctl --root="$R" enable "${units[@]}" 2>&1 | grep -v '^Created symlink' || true
systemctl --root="$R" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1
step "installed units, rules, config and $(ls "$ROOT/examples" | wc -l) mini-apps; enabled ${units[*]}"

if [ "$ARCH" = amd64 ]; then "$HERE/lib/qemu-kernel.sh" "$CACHE" "$R" "$OUT"; step "kernel, CAN modules and initramfs ready"; fi

SZ=$(( $(du -sm "$R" | cut -f1) * 13 / 10 + 128 ))
rm -f "$OUT/rootfs.ext4"
mke2fs -q -t ext4 -L vh-root -d "$R" "$OUT/rootfs.ext4.tmp" "${SZ}M" >/dev/null
mv "$OUT/rootfs.ext4.tmp" "$OUT/rootfs.ext4"
echo "$IMAGE_KEY" > "$OUT/image.key"
step "wrote $OUT/rootfs.ext4 (${SZ} MiB, $(du -h "$OUT/rootfs.ext4" | cut -f1) used), key $IMAGE_KEY"
