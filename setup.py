"""Build of the compiled fast path; everything else is declared in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler, no OpenSSL or
libsodium headers) the install goes on without it, and the package runs its pure-Python
reference with a warning (see ``border_exchange.domain.fastpath``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "border_exchange._native",
            sources=["src/border_exchange/_native.c"],
            # OpenSSL's SHA-256 (the library Python's hashlib uses) and libsodium's
            # Ed25519 verification (the library PyNaCl wraps), both linked here.
            libraries=["crypto", "sodium"],
            extra_compile_args=["-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ],
)
