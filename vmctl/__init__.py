"""vmctl: declarative VM-as-code for libvirt."""

__version__ = "0.1.0"
