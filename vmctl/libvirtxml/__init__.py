"""libvirt's XML: domains, networks, pools and volumes, built and read with an XML library; vmctl's metadata.

Owns: the domain XML of a desired guest (`domain`, `definition`), reading live XML back into the model
(`readback`), the ownership record inside `<metadata>` (`metadata`), network and storage XML.
Must not import: `vmctl.plan`, `vmctl.hypervisor`, `vmctl.apply`, `vmctl.cli`, libvirt.
"""
