#!/usr/bin/env bash
# Install the Debian packages vmctl, its tests and its demo need, then check that every program they
# promise is there: apt installs without recommends, so a program that only a recommended package
# brings (dnsmasq, xmllint) would otherwise be missing on a fresh machine. Safe to re-run.
set -euo pipefail

PACKAGES=(
  # the hypervisor; dnsmasq-base serves DHCP/DNS on every nat or isolated libvirt network
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ovmf dnsmasq-base
  # without systemd, libvirtd runs under tini as a subreaper: see scripts/start-libvirtd.sh
  tini
  # building libvirt-python from PyPI
  libvirt-dev pkg-config gcc python3-dev python3-venv
  # test oracles: virt-xml-validate (libvirt-clients) and the xmllint it calls, isoinfo, xorriso,
  # cloud-init's schema validator
  libxml2-utils genisoimage xorriso cloud-init
  # building guest images from the Debian archive
  mmdebstrap e2fsprogs busybox-static cpio initramfs-tools-core
  # `vmctl ssh` runs the system ssh; its tests make keys and read `vmctl output --format ansible`;
  # remote hosts: libvirt's ssh transport (ssh here; sshd and virt-ssh-helper, from libvirt-daemon,
  # on the host; tests/remote runs an sshd of its own on 127.0.0.1)
  openssh-client openssh-server ansible-core
)

# Every program vmctl, its tests or its demo call, and the package above that brings it.
PROGRAMS=(
  libvirtd virtlogd tini virsh virt-xml-validate qemu-system-x86_64 qemu-img dnsmasq xmllint
  isoinfo xorriso cloud-init mmdebstrap mkfs.ext4 busybox cpio pkg-config gcc
  qemu-io setpriv mount umount
  ssh ssh-keygen ansible ansible-inventory sshd virt-ssh-helper unshare useradd
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  # The tests start an sshd of their own on 127.0.0.1; the one openssh-server would start on port 22
  # of every interface is not wanted: packages installed here start no service (policy-rc.d), and
  # a newly installed sshd is not enabled.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || $SUDO rm -f "$policy"
  if [[ " ${missing[*]} " == *" openssh-server "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
fi

absent=()
for prog in "${PROGRAMS[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "$prog" >/dev/null 2>&1 || absent+=("$prog")
done
if [ ${#absent[@]} -gt 0 ]; then
  echo "system-deps: installed the packages, but these programs are still missing: ${absent[*]}" >&2
  echo "system-deps: add the Debian package that provides each to PACKAGES in $0" >&2
  exit 1
fi
