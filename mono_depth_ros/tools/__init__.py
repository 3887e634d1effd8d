"""Command-line tools: thin layers over the core modules."""
