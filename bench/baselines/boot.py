"""Baseline: define and start the tiny guest, then poll guest-ping until its agent answers."""

import json
import sys
import time

import libvirt
import libvirt_qemu

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
uri, name, kernel, initrd, cmdline = sys.argv[1:6]
DOMAIN = """<domain type='qemu'><name>{name}</name><memory unit='KiB'>262144</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{cmdline}</cmdline></os>
<cpu mode='custom' match='exact'><model>qemu64</model></cpu><features><acpi/><apic/></features>
<devices><controller type='usb' model='none'/><interface type='user'><model type='virtio'/></interface>
<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
<serial type='pty'/><memballoon model='virtio'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
</devices></domain>"""
conn = libvirt.open(uri)
dom = conn.defineXML(DOMAIN.format(name=name, kernel=kernel, initrd=initrd, cmdline=cmdline))
dom.create()
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    try:
        libvirt_qemu.qemuAgentCommand(dom, json.dumps({"execute": "guest-ping"}), 2, 0)
        break
    except libvirt.libvirtError:
        time.sleep(0.2)
else:
    sys.exit("the agent never answered")
