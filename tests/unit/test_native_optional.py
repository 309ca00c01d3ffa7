"""Without the compiled module the package runs its pure-Python reference, with a warning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from border_exchange.domain import fastpath

_PROBE = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from border_exchange.domain import fastpath, signature_batch
from border_exchange.domain.encoding import decode_envelope, encode_envelope
from border_exchange.domain.samples import sample_alert
from border_exchange.domain.signing import seal, verify_trusted
from border_exchange.domain.catalog import AlertType
from nacl.signing import SigningKey
from datetime import UTC, datetime
envelope = seal(sample_alert(AlertType.WANTED_PERSON), signing_key=SigningKey(bytes(32)),
                key_id="CAF-2026-01", message_id="m-1", issued_at=datetime.now(UTC))
assert decode_envelope(encode_envelope(envelope)) == envelope
assert (fastpath.read_envelope(encode_envelope(envelope), 10) is None) is not fastpath.NATIVE
with signature_batch.signature_checks() as checks:
    checks.add("bad", bytes(64), bytes(32))
    assert checks.failed() == ["bad"]
print(fastpath.NATIVE, [str(w.message) for w in caught])
"""


def _probe(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_with_the_fallback_forced_the_python_reference_runs_and_warns_once() -> None:
    out = _probe(BX_NO_NATIVE="1")
    assert out.startswith("False ")
    assert out.count("the compiled fast path is not used because BX_NO_NATIVE is set") == 1


def test_without_the_variable_the_compiled_module_runs_without_a_warning() -> None:
    if not fastpath.NATIVE and fastpath.WHY_NOT_NATIVE != "BX_NO_NATIVE is set":
        pytest.skip(f"the compiled module is not used here: {fastpath.WHY_NOT_NATIVE}")
    out = _probe(BX_NO_NATIVE="0")
    assert out == "True []\n"
