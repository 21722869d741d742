"""Stand-ins for what vmctl talks to, in memory: tests that need no libvirt at all use these."""
