"""vehicle-host: an in-vehicle super-app host for Linux head units."""

__version__ = "0.1.0"
