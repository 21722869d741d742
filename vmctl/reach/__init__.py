"""Reaching guests that run: commands through the guest agent, the serial console, and how to log in.

Owns: running a program in a guest through its agent (`agent`), the serial console's log and stream
(`console`), who and where to ssh to and the files other tools read (`access`, pure).
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`, libvirt.
"""
