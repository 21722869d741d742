"""The resolve stage: a Spec plus host facts and local files -> the exact desired state.

Owns: image digests and sizes (`localfiles`, `disksize`), accel and CPU model, seeds' identities (`desired`).
Must not import: `vmctl.plan`, `vmctl.hypervisor`, `vmctl.apply`, `vmctl.cli`.
"""
