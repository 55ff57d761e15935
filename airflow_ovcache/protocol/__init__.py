"""The agent protocol: what the agent and the provider agree on, in the standard library only."""
