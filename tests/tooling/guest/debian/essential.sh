#!/bin/sh
# mmdebstrap --essential-hook of vmctl's "debian" image: $1 is the root being built.
# Runs before linux-image-amd64 is installed, so the kernel's postinst builds the initrd with this
# configuration once, instead of a second update-initramfs run later.
set -eu
root=$1
data=$(dirname "$0")
install -D -m 0755 "$data/initramfs-hook" "$root/etc/initramfs-tools/hooks/vmctl-virtio"
install -D -m 0644 "$data/initramfs.conf" "$root/etc/initramfs-tools/conf.d/vmctl"
