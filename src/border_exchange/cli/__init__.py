"""Command-line entry points; each module adds one subcommand family."""
