#!/usr/bin/env bash
# Make sure a libvirtd answers on qemu:///system; start it (and virtlogd) when it does not.
set -euo pipefail

answers() { virsh -q -c qemu:///system version >/dev/null 2>&1; }

answers && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -d /run/systemd/system ]; then
  $SUDO systemctl start virtlogd.socket libvirtd.service || true
else
  # No systemd (containers, CI): run the daemons ourselves. libvirtd runs in the foreground under
  # tini as a child subreaper: a QEMU that exits is orphaned (libvirt daemonizes it) and must be
  # reaped before libvirtd sees it gone. systemd reaps at once; a container's PID 1 may reap only
  # now and then (on the machines vmctl's CI runs on, about once a second), and every domain
  # destroy then waits that long for libvirtd to notice.
  pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
  pgrep -x libvirtd >/dev/null || $SUDO setsid -f tini -s -- libvirtd </dev/null >/dev/null 2>&1
fi
for _ in $(seq 1 50); do
  answers && exit 0
  sleep 0.2
done
echo "libvirtd did not come up on qemu:///system" >&2
exit 1
