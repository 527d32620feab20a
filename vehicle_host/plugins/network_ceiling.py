"""Per-publisher network ceilings: the most a publisher's apps may reach, whatever their manifests say.

The operator (or the registry that reviewed the partner) sets, per app-id namespace, the host names
its apps may ever contact; the network plugin config holds them::

    [plugins.network.ceilings]
    "com.acme" = ["api.acme.example", "*.cdn.acme.example"]

An app ``com.acme.diag`` then keeps only the allow-list entries inside that ceiling. Apps of a
namespace without a ceiling keep their reviewed allow-list. The longest matching namespace wins.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vehicle_host.errors import VehicleHostError

NAMESPACE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*$")
PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
MAX_NAMESPACES = 200
MAX_PATTERNS = 64


class ConfigError(VehicleHostError):
    """The ceilings in the network plugin's config are malformed (the plugin does not start)."""


@dataclass(frozen=True, slots=True)
class Ceilings:
    by_namespace: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, value: Any) -> Ceilings:
        """``ceilings`` from the plugin config; a malformed one is a ConfigError naming the entry."""
        if value is None:
            return cls({})
        if not isinstance(value, Mapping) or len(value) > MAX_NAMESPACES:
            raise ConfigError(f"network.ceilings must map at most {MAX_NAMESPACES} app-id namespaces")
        out: dict[str, tuple[str, ...]] = {}
        for namespace, patterns in value.items():
            if not isinstance(namespace, str) or not NAMESPACE.match(namespace):
                raise ConfigError(
                    f"network.ceilings: {namespace!r} is not an app-id namespace like 'com.acme'"
                )
            if not isinstance(patterns, list) or len(patterns) > MAX_PATTERNS:
                raise ConfigError(f"network.ceilings.{namespace} must list at most {MAX_PATTERNS} host names")
            for pattern in patterns:
                if not isinstance(pattern, str) or not PATTERN.match(pattern.lower()):
                    raise ConfigError(
                        f"network.ceilings.{namespace}: {pattern!r} must be a host name (may start with '*.')"
                    )
            out[namespace] = tuple(p.lower() for p in patterns)
        return cls(out)

    def namespace_of(self, app_id: str) -> str | None:
        found = [ns for ns in self.by_namespace if app_id == ns or app_id.startswith(ns + ".")]
        return max(found, key=len) if found else None

    def permits(self, app_id: str, host: str) -> bool:
        """Whether ``host`` is inside the ceiling of the app's namespace (always, without a ceiling)."""
        namespace = self.namespace_of(app_id)
        if namespace is None:
            return True
        host = host.lower().rstrip(".")
        return any(
            fnmatch.fnmatchcase(host, p) if p.startswith("*.") else host == p
            for p in self.by_namespace[namespace]
        )
