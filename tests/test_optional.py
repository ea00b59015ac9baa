import subprocess
import sys

import pytest

from cuecraft._optional import require
from cuecraft.errors import MissingDependencyError


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes any import of it fail
    with pytest.raises(MissingDependencyError) as error:
        require("transformers", extra="text", purpose="the t5 conditioner")
    message = str(error.value)
    assert "cuecraft needs the optional package 'transformers' for the t5 conditioner" in message
    assert "pip install 'cuecraft[text]'" in message
    assert isinstance(error.value, ImportError)


def test_present_module_is_returned():
    assert require("json", extra="none", purpose="x").dumps([1]) == "[1]"


def test_import_does_not_pull_heavy_optional_packages():
    code = "import sys, cuecraft, cuecraft.config; print(sorted(m for m in ('transformers', 'diffusers', 'librosa') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
