"""Real local peers for the adapter tests (PEERS.md)."""
