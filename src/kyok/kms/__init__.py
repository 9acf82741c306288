"""The key-management domain: instances, keys, versions, states, aliases, key rings."""
