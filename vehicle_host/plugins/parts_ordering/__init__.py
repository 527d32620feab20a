"""The ``parts_ordering`` plugin: dealer catalog, per-app cart, and an outbox for orders and bookings."""
