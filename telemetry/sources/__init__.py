"""Source adapters: transport consumers that feed the ingest pipeline through a Dispatcher."""
