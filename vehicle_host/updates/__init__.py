"""Head-unit updates: follow the registry's signed releases into the bundle cache, report health."""
