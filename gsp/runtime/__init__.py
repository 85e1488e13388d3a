"""Running the platform: the embedded broker, the control plane's services, `gsp serve`, the
stream-worker supervisor, the connector process, logs and consumer lag."""
