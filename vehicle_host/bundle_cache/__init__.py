"""The head unit's bundle cache: content-addressed app objects, atomic activation, rollback."""

from vehicle_host.bundle_cache.cache import BundleCache, CacheError, Installed

__all__ = ["BundleCache", "CacheError", "Installed"]
