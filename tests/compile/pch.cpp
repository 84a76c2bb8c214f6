// Builds the precompiled header that the configuration checks reuse.
