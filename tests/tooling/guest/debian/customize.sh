#!/bin/sh
# mmdebstrap --customize-hook of vmctl's "debian" image: $1 is the finished root.
set -eu
root=$1
data=$(dirname "$0")

install -D -m 0644 "$data/90_vmctl.cfg" "$root/etc/cloud/cloud.cfg.d/90_vmctl.cfg"
install -D -m 0644 "$data/qemu-guest-agent-early.conf" \
    "$root/etc/systemd/system/qemu-guest-agent.service.d/vmctl-early.conf"

# The filesystem sits directly on the disk (no partition table) and is mounted rw by the kernel
# command line; fsck pass 0 because the initrd carries no fsck for it anyway.
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 0' >"$root/etc/fstab"
echo 'debian' >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# Periodic maintenance jobs only compete with cloud-init for the single TCG vCPU during boot
# (e2scrub_reap alone took 13 s of a 52 s boot).
for unit in e2scrub_reap.service e2scrub_all.timer fstrim.timer apt-daily.timer \
    apt-daily-upgrade.timer dpkg-db-backup.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# About half of the root filesystem is kernel modules for hardware a virtio guest never has.
for modules in "$root"/lib/modules/*; do
    for dir in sound drivers/gpu drivers/media drivers/infiniband drivers/iio drivers/staging \
        drivers/net/wireless drivers/bluetooth drivers/isdn net/wireless net/mac80211 net/bluetooth; do
        rm -rf "$modules/kernel/$dir"
    done
    chroot "$root" depmod -a "${modules##*/}"
done
