"""The narrated demo (``border-exchange demo``) and the sandbox that makes its keys.

Not part of the product: no module outside this package imports it (a test holds the
code to that); the command line only lists its subcommand. The tests and benchmarks use
the sandbox (``demo.sandbox``) for their keys, trust stores and agreements.
"""
