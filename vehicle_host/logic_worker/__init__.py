"""The logic worker: one process per running mini-app, running its JS in a QuickJS realm."""
