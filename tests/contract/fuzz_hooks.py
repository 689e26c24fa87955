"""Schemathesis hooks of the fuzz run (loaded through ``SCHEMATHESIS_HOOKS``).

The fuzzer acts with one API key; revoking that key would turn every later request into a 401
and end the useful part of the run. ``GET /api-keys`` lists it, so links can lead the fuzzer to
``DELETE /api-keys/{its id}``: such a call is sent for an id that does not exist instead.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED_KEY_ENV = "RUNLATER_FUZZ_PROTECTED_KEY_ID"
ABSENT_ID = "00000000-0000-7000-8000-000000000000"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    protected = os.environ.get(PROTECTED_KEY_ENV)
    parameters = case.path_parameters or {}
    if protected and case.method.upper() == "DELETE" and protected in parameters.values():
        case.path_parameters = {
            name: ABSENT_ID if value == protected else value for name, value in parameters.items()
        }
