"""The plan stage (pure): desired state + live state -> Plan, and its renderings.

Owns: the Plan's types (`changes`), the decisions (`planner`, `guest`, `destroy`), text and JSON
(`render`), saved plans (`saved`). No I/O but reading and writing saved plan files.
Must not import: `vmctl.hypervisor`, `vmctl.apply`, `vmctl.cli`, libvirt.
"""
