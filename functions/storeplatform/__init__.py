"""Store provisioning platform: CloudEvent functions, shared core and the Helm runner."""
