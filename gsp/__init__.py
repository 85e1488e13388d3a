"""GSP control plane: CLI, settings, catalog, subscriptions, schema registry and the embedded runtime."""
