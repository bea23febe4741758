"""p4ctl: a flow-cache control plane for P4 switches over P4Runtime."""

__version__ = "0.1.0"
