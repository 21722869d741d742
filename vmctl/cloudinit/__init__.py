"""cloud-init: the NoCloud seed (a reproducible ISO, built in-process) and content diffs with secrets masked.

Must not import: `vmctl.plan`, `vmctl.hypervisor`, `vmctl.apply`, `vmctl.cli`.
"""
