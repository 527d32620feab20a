"""The app registry: partners publish signed bundles, reviewers approve, release managers roll out.

``service.Registry`` is the registry on one data directory (SQLite database via ``db``, the TUF
repository via ``vehicle_host.trust.repository``, uploaded bundles); ``review`` runs the automated
checks of a submission; ``rollout`` handles gray releases, health-driven widening and rollback and
A/B experiments; ``http`` serves the JSON API, the repository (``/repo/``) and the web console
(``/console/``); ``cli`` is ``vehicle-host registry``.
"""

from __future__ import annotations

from vehicle_host.registry.errors import RegistryError

__all__ = ["RegistryError"]
