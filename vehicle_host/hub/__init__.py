"""The hub: broker, supervisor of logic workers, and the one policy point between shell, apps and plugins."""
