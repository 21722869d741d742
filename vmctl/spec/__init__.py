"""The spec stage: YAML files with positions, merging, JSON Schema and semantic checks -> `Spec`.

Owns: reading spec files (`source`), finding and merging them (`files`), the schema (`schema`), building
guests (`guest`) and the whole Spec (`load`). Every problem is a located `Problem`.
Must not import: `vmctl.resolve`, `vmctl.plan`, `vmctl.libvirtxml`, `vmctl.hypervisor`, `vmctl.apply`, `vmctl.cli`.
"""
