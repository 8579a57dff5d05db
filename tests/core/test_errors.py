"""The exceptions mcd raises on purpose: one base, and each kind caught where its handling is decided."""

from __future__ import annotations

import json

import pytest

from chalicelib.core.errors import ConfigurationError, MalformedInput, McdError, RetryableError


def test_exception_tree() -> None:  # moved from tests/parsing/test_envelopes.py
    assert issubclass(MalformedInput, ValueError)
    for error in (MalformedInput, RetryableError, ConfigurationError):
        assert issubclass(error, McdError)


def test_only_malformed_input_is_a_value_error() -> None:
    """Code that catches ``ValueError`` (bad input) must not swallow a transient or a deployment failure."""
    assert not issubclass(RetryableError, ValueError)
    assert not issubclass(ConfigurationError, ValueError)
    assert issubclass(McdError, Exception) and not issubclass(McdError, ValueError)


def test_malformed_input_is_caught_where_bad_json_is() -> None:
    def read(text: str) -> object:
        try:
            return json.loads(text)
        except ValueError as error:
            raise MalformedInput(f"not JSON: {error}") from error

    with pytest.raises(ValueError, match="not JSON") as caught:
        read("{broken")
    assert isinstance(caught.value, McdError) and isinstance(caught.value.__cause__, json.JSONDecodeError)


@pytest.mark.parametrize("error", [MalformedInput, RetryableError, ConfigurationError])
def test_each_keeps_its_message(error: type[McdError]) -> None:
    with pytest.raises(McdError) as caught:
        raise error("what to do about it")
    assert type(caught.value) is error and str(caught.value) == "what to do about it"
