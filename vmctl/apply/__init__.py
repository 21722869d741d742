"""The apply stage: executes a Plan step by step against the hypervisor; never re-decides what the plan decided.

Owns: the order of steps (`executor`), one guest's steps (`guest`), live device steps (`live`), waiting
for guests (`waiting`), the apply lock (`lock`), progress events (`progress`).
Must not import: `vmctl.cli`.
"""
