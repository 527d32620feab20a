#!/usr/bin/env bash
# For the amd64 (qemu) image: Debian's generic kernel (the -cloud flavour has no CAN), its CAN modules
# copied into the root filesystem, and a busybox initramfs that mounts /dev/vda and switches to it.
#   qemu-kernel.sh CACHE ROOTFS OUT   ->  OUT/vmlinuz, OUT/initrd.img, OUT/kernel.version
set -euo pipefail
CACHE=$1 R=$2 OUT=$3
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -z "$KPKG" ]; then
  apt-get update -qq -o DPkg::Lock::Timeout=600
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
fi
KVER=${KPKG#linux-image-}
K="$CACHE/kernel-$KVER"
if [ ! -f "$K/boot/vmlinuz-$KVER" ]; then
  rm -rf "$K" "$K.tmp" && mkdir -p "$K.tmp"
  (cd "$K.tmp" && apt-get download -q "$KPKG" 2>&1 | grep -v "unsandboxed as root" || true && dpkg-deb -x "$KPKG"_*.deb . && rm "$KPKG"_*.deb)
  depmod -b "$K.tmp" "$KVER"
  mv "$K.tmp" "$K"
fi
deps() { for m in "$@"; do modprobe -d "$K" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'; done | awk '!seen[$0]++'; }
M="$K/lib/modules/$KVER"
# CAN: virtual bus, raw/bcm/ISO-TP sockets, USB and serial adapters
for f in $(deps vcan can-raw can-bcm can-isotp can-gw gs_usb peak_usb slcan); do
  d="$R/lib/modules/$KVER/${f#"$M"/}"
  mkdir -p "${d%/*}"
  cp "$f" "$d"
done
cp "$M"/modules.{builtin,builtin.modinfo,order} "$R/lib/modules/$KVER/"
depmod -b "$R" "$KVER"
cp "$K/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$KVER" > "$OUT/kernel.version"
I=$(mktemp -d)
mkdir -p "$I"/{bin,dev,proc,sys,newroot,m}
cp "$(command -v busybox)" "$I/bin/busybox"
for f in $(deps virtio_pci virtio_blk ext4); do cp "$f" "$I/m/"; echo "${f##*/}"; done > "$I/m/order"
cat > "$I/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev; mount -t proc proc /proc; mount -t sysfs sys /sys
for m in $(cat /m/order); do insmod /m/$m 2>/dev/null; done
for i in $(seq 100); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -o ro /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod +x "$I/init"
(cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initrd.img"
rm -rf "$I"
