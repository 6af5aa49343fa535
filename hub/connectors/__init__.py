"""Department connectors: publish verified holder records, take department proofs in."""
