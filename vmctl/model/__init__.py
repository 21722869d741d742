"""The model: frozen types that flow between the stages, and how vmctl names things.

Owns: what the spec wants, what libvirt has, vmctl's ownership record; names and MACs (`naming`).
Must not import: anything of vmctl but `vmctl.errors` and `vmctl.units`.
"""
