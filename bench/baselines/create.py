"""Baseline: create N stopped guests with the same libvirt calls vmctl makes, one after another.

Per guest: a qcow2 overlay on the base image, a seed volume uploaded with the seed's bytes (built
once, before timing starts: vmctl builds one per guest), and the domain definition.
"""

import sys

import libvirt

uri, pool_name, prefix, count, base_path, seed_file = sys.argv[1:7]
with open(seed_file, "rb") as handle:
    seed = handle.read()
conn = libvirt.open(uri)
pool = conn.storagePoolLookupByName(pool_name)
POOL_PATH = pool.XMLDesc(0).split("<path>")[1].split("</path>")[0]

VOLUME = """<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity>
<target><format type='{fmt}'/></target>{backing}</volume>"""
BACKING = "<backingStore><path>{path}</path><format type='qcow2'/></backingStore>"
DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='KiB'>262144</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><cpu mode='custom' match='exact'><model>qemu64</model></cpu>
<devices>
<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/><source pool='{pool}' volume='{name}-root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='volume' device='cdrom'><driver name='qemu' type='raw'/><source pool='{pool}' volume='{name}-seed.iso'/><target dev='sda' bus='sata'/><readonly/></disk>
<interface type='user'><model type='virtio'/></interface>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<memballoon model='virtio'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
</devices></domain>"""

for index in range(1, int(count) + 1):
    name = f"{prefix}{index}"
    pool.createXML(
        VOLUME.format(name=f"{name}-root.qcow2", size=1 << 30, fmt="qcow2", backing=BACKING.format(path=base_path)), 0
    )
    vol = pool.createXML(VOLUME.format(name=f"{name}-seed.iso", size=len(seed), fmt="raw", backing=""), 0)
    stream = conn.newStream(0)
    vol.upload(stream, 0, len(seed), 0)
    stream.send(seed)
    stream.finish()
    conn.defineXML(DOMAIN.format(name=name, pool=pool_name))
