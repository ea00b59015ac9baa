"""The pipelines package imports nothing heavy, and a missing extra is named."""

import subprocess
import sys

import pytest
import torch

from cuecraft.errors import MissingDependencyError


def test_importing_pipelines_and_the_cli_pulls_no_heavy_package():
    code = ("import sys, cuecraft.pipelines, cuecraft.cli; "
            "print(sorted(m for m in ('transformers', 'diffusers', 'librosa', 'soundfile') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_missing_diffusers_names_the_musicldm_extra(pipe, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes any import of it fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'cuecraft\[musicldm\]'"):
        pipe.set_scheduler("unipc")


def test_missing_librosa_names_the_audio_extra(pipe, monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(MissingDependencyError, match=r"resampling generated audio to CLAP's rate for ranking.*"
                                                     r"pip install 'cuecraft\[audio\]'"):
        pipe("fast techno", num_waveforms_per_prompt=2, num_inference_steps=1, audio_length_in_s=0.016,
             generator=torch.Generator().manual_seed(0))
