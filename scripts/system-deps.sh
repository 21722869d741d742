#!/usr/bin/env bash
# Install the Debian packages vmctl, its tests and its demo need. Safe to re-run: skips what is there.
set -euo pipefail

PACKAGES=(
  # the hypervisor
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ovmf
  # building libvirt-python from PyPI
  libvirt-dev pkg-config gcc python3-dev python3-venv
  # test oracles: virt-xml-validate (libvirt-clients), isoinfo, xorriso, cloud-init's schema validator
  genisoimage xorriso cloud-init
  # building guest images from the Debian archive
  mmdebstrap e2fsprogs busybox-static cpio initramfs-tools-core
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
