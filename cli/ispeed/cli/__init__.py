"""The `ispeed` command: one entry point, subcommands registered by each component."""
