"""The authoritative flow store: keys, records, states, slot allocation."""
