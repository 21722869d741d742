"""Baseline: change N stopped guests' memory, one after another.

Per guest: look the domain up, read its persistent definition, set <memory> and <currentMemory>
with lxml (as vmctl parses and builds XML), and define it again.
"""

import sys

import libvirt
from lxml import etree

uri, prefix, count, kib = sys.argv[1:5]
conn = libvirt.open(uri)
for index in range(1, int(count) + 1):
    dom = conn.lookupByName(f"{prefix}{index}")
    root = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    for tag in ("memory", "currentMemory"):
        element = root.find(tag)
        element.set("unit", "KiB")
        element.text = kib
    conn.defineXML(etree.tostring(root, encoding="unicode"))
