"""Baseline: undefine N guests and delete their two volumes, one after another."""

import sys

import libvirt

uri, pool_name, prefix, count = sys.argv[1:5]
conn = libvirt.open(uri)
pool = conn.storagePoolLookupByName(pool_name)
for index in range(1, int(count) + 1):
    name = f"{prefix}{index}"
    conn.lookupByName(name).undefine()
    for volume in (f"{name}-root.qcow2", f"{name}-seed.iso"):
        pool.storageVolLookupByName(volume).delete(0)
