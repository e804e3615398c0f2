"""The host-side compile stage: circuits in, device-independent Programs out."""
