"""Build of the compiled fast path; everything else is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "border_exchange._native",
            sources=["src/border_exchange/_native.c"],
            libraries=["crypto"],  # OpenSSL's SHA-256, the library Python's hashlib uses
            extra_compile_args=["-Wextra", "-Wno-unused-parameter"],
        )
    ],
)
