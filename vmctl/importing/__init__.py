"""The import stage: existing domains -> a spec in vmctl's own YAML style that adopts them.

Owns: what a domain's definition says in the spec language, and what it has that the spec cannot
say (`guest`, pure), and the spec text written from that (`writer`).
Must not import: `vmctl.plan`, `vmctl.apply`, `vmctl.cli`, libvirt.
"""
