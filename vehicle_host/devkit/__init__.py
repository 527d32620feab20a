"""The mini-app developer kit: ``vehicle-host new`` and ``vehicle-host dev``."""
