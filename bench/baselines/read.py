"""Baseline: what any tool must do to know a host's domains: list them, read each one's XML and metadata."""

import contextlib
import sys

import libvirt

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
conn = libvirt.open(sys.argv[1] if len(sys.argv) > 1 else "qemu:///system")
count = 0
for dom in conn.listAllDomains(0):
    try:
        dom.XMLDesc(0)
    except libvirt.libvirtError as exc:  # removed since listed (other programs share the host): as vmctl does
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        continue
    with contextlib.suppress(libvirt.libvirtError):  # most domains have no vmctl metadata
        dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, "urn:vmctl:metadata:1", 0)
    count += 1
print(count)
