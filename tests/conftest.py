import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global random state."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Directories of tiny random pretrained models, built once per test session."""
    from tests.tiny_models import tiny_clap, tiny_t5

    root = tmp_path_factory.mktemp("models")
    return {"t5": str(tiny_t5(root / "t5")), "clap": str(tiny_clap(root / "clap"))}
