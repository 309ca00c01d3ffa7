"""Pure domain logic: values and functions, no I/O."""
