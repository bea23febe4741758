"""p4ctl's configuration: YAML → typed, frozen objects, with errors at file:line: field.

``load_config(path)`` / ``parse_config(text, filename)`` return a
:class:`Config` or raise one :class:`ConfigError` listing every problem of the
file. The modules: :mod:`.model` (the frozen classes), :mod:`.values` (value
converters), :mod:`.reader` (YAML nodes with line numbers), :mod:`.schema`
(keys, defaults, cross-checks), :mod:`.loader` (files and syntax errors).
See ``docs/configuration.md`` for the file format.
"""

from p4ctl.config.errors import ConfigError, ConfigIssue
from p4ctl.config.loader import load_config, parse_config
from p4ctl.config.model import (
    ActionSpec,
    AgingConfig,
    AgingOverride,
    Config,
    DeviceConfig,
    DigestSettings,
    FlowSettings,
    MetricsConfig,
    PolicyConfig,
    PolicyRule,
    PortSet,
    ReconcileConfig,
    RegisterBackend,
    RuleAction,
    TableSizes,
    TcpAging,
    TlsConfig,
    VrfPolicy,
    seconds_to_ns,
)
from p4ctl.config.schema import bundled_pipeline_dir
from p4ctl.config.values import split_host_port

__all__ = [
    "ActionSpec",
    "AgingConfig",
    "AgingOverride",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DeviceConfig",
    "DigestSettings",
    "FlowSettings",
    "MetricsConfig",
    "PolicyConfig",
    "PolicyRule",
    "PortSet",
    "ReconcileConfig",
    "RegisterBackend",
    "RuleAction",
    "TableSizes",
    "TcpAging",
    "TlsConfig",
    "VrfPolicy",
    "bundled_pipeline_dir",
    "load_config",
    "parse_config",
    "seconds_to_ns",
    "split_host_port",
]
