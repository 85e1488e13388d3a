"""The one HTTP stack: the control plane's app (schema registry, subscriptions, desks), the
operations endpoints of workers and connectors, and the OpenAPI document."""
