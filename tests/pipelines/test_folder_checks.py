"""A model folder that is not whole is refused with PretrainedModelNotFoundError naming what is
missing: MusicLDM sub-directories, a T5 folder without tokenizer files, and the same model in the
Hugging Face cache layout (models--ORG--NAME/snapshots/HASH)."""

import shutil

import pytest

from cuecraft.conditioners.pretrained import TOKENIZER_FILES, check_model_folder, load_pretrained
from cuecraft.errors import PretrainedModelNotFoundError
from cuecraft.pipelines.loading import load_components, read_model_index

transformers = pytest.importorskip("transformers")
huggingface_hub = pytest.importorskip("huggingface_hub")

TOKENIZER_LIST = ", ".join(TOKENIZER_FILES)
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def copy_without(source, destination, *names):
    """A copy of model folder ``source`` with the files ``names`` (relative paths) removed."""
    shutil.copytree(source, destination)
    for name in names:
        (destination / name).unlink(missing_ok=True)  # the tiny tokenizer saves tokenizer.json only
    return destination


# -- MusicLDM folders ---------------------------------------------------------------------------

def test_the_whole_musicldm_folder_passes(musicldm_dir):
    path, index = read_model_index(musicldm_dir)
    assert path == musicldm_dir
    assert {"vae", "text_encoder", "tokenizer", "feature_extractor", "unet", "scheduler", "vocoder"} <= set(index)


def test_a_tokenizer_without_tokenizer_json_or_vocab_json_is_refused(musicldm_dir, tmp_path):
    broken = copy_without(musicldm_dir, tmp_path / "m", "tokenizer/tokenizer.json", "tokenizer/vocab.json")
    with pytest.raises(PretrainedModelNotFoundError) as error:
        load_components(broken)  # refused before anything is loaded
    assert str(error.value) == (f"MusicLDM model: {broken} is incomplete: tokenizer/ holds none of "
                                "tokenizer.json, vocab.json (without it the tokenizer would know 5 tokens)")


def test_either_tokenizer_file_is_enough(musicldm_dir, tmp_path):
    import json

    only_vocab = copy_without(musicldm_dir, tmp_path / "m", "tokenizer/tokenizer.json")
    with pytest.raises(PretrainedModelNotFoundError, match="tokenizer/ holds none of tokenizer.json, vocab.json"):
        read_model_index(only_vocab)
    saved = json.loads((musicldm_dir / "tokenizer" / "tokenizer.json").read_text())["model"]
    (only_vocab / "tokenizer" / "vocab.json").write_text(json.dumps(saved["vocab"]))  # a slow tokenizer's files
    assert read_model_index(only_vocab)[0] == only_vocab


def test_every_missing_component_file_is_named_at_once(musicldm_dir, tmp_path):
    broken = copy_without(musicldm_dir, tmp_path / "m", "tokenizer/tokenizer.json", "tokenizer/vocab.json",
                          "vae/config.json", "scheduler/scheduler_config.json")
    with pytest.raises(PretrainedModelNotFoundError) as error:
        read_model_index(broken)
    message = str(error.value)
    assert message.startswith(f"MusicLDM model: {broken} is incomplete: vae/ holds none of config.json; ")
    assert "tokenizer/ holds none of tokenizer.json, vocab.json" in message
    assert message.endswith("scheduler/ holds none of scheduler_config.json")


# -- check_model_folder -------------------------------------------------------------------------

def test_check_model_folder_names_the_missing_files(tiny_models, tmp_path):
    t5 = tiny_models["t5"]
    check_model_folder(shutil.copytree(t5, tmp_path / "whole"), "t5", tokenizer=False)
    check_model_folder(tmp_path / "whole", "t5", tokenizer=True)
    no_config = copy_without(t5, tmp_path / "c", "config.json")
    with pytest.raises(PretrainedModelNotFoundError, match=r"t5: the directory .*/c does not hold a complete "
                                                           r"model: no config\.json$"):
        check_model_folder(no_config, "t5", tokenizer=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PretrainedModelNotFoundError) as error:
        check_model_folder(empty, "t5", tokenizer=False)
    assert str(error.value) == (f"t5: the directory {empty} does not hold a complete model: no config.json and "
                                "no weights (one of model.safetensors, model.safetensors.index.json, "
                                "pytorch_model.bin, pytorch_model.bin.index.json)")
    with pytest.raises(PretrainedModelNotFoundError, match=f"no tokenizer file \\(none of {TOKENIZER_LIST}\\)"):
        check_model_folder(empty, "t5", tokenizer=True)


def test_a_t5_folder_without_tokenizer_files_is_refused(tiny_models, tmp_path):
    from cuecraft.conditioners.text import T5Conditioner

    whole = T5Conditioner(output_dim=32, t5_model_name=tiny_models["t5"])
    assert len(whole.tokenizer) > 20  # the tiny vocabulary: WORDS plus 3 specials
    broken = copy_without(tiny_models["t5"], tmp_path / "t5", "tokenizer.json")
    with pytest.raises(PretrainedModelNotFoundError) as error:
        T5Conditioner(output_dim=32, t5_model_name=str(broken))
    assert str(error.value).startswith(f"t5 conditioner (t5_model_name): the directory {broken} does not hold a "
                                       f"complete model: no tokenizer file (none of {TOKENIZER_LIST})")


# -- the Hugging Face cache layout --------------------------------------------------------------

@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache that both huggingface_hub and transformers read (they read
    ``huggingface_hub.constants.HF_HUB_CACHE`` at call time)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def cache_model(cache, source, repo_id, *missing):
    """``source``'s files laid out as ``hf download repo_id`` caches them, without ``missing``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = copy_without(source, repo / "snapshots" / SNAPSHOT, *missing)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SNAPSHOT)
    return snapshot


def test_a_whole_cached_model_loads(hub_cache, tiny_models):
    cache_model(hub_cache, tiny_models["t5"], "tiny-org/t5-whole")
    tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, "tiny-org/t5-whole", what="t5")
    assert len(tokenizer) > 20
    assert tokenizer.convert_ids_to_tokens(tokenizer("fast techno")["input_ids"]) == ["fast", "techno", "</s>"]


def test_a_cached_model_without_tokenizer_files_is_refused(hub_cache, tiny_models):
    snapshot = cache_model(hub_cache, tiny_models["t5"], "tiny-org/t5-broken", "tokenizer.json")
    with pytest.raises(PretrainedModelNotFoundError) as error:  # transformers alone builds a 104-token tokenizer
        load_pretrained(transformers.AutoTokenizer.from_pretrained, "tiny-org/t5-broken", what="t5")
    assert str(error.value).startswith(
        f"t5 (tiny-org/t5-broken in the Hugging Face cache): the directory {snapshot} does not hold a complete "
        f"model: no tokenizer file (none of {TOKENIZER_LIST})")


def test_a_cached_model_without_weights_is_refused(hub_cache, tiny_models):
    snapshot = cache_model(hub_cache, tiny_models["t5"], "tiny-org/t5-noweights", "model.safetensors")
    with pytest.raises(PretrainedModelNotFoundError) as error:
        load_pretrained(transformers.T5EncoderModel.from_pretrained, "tiny-org/t5-noweights", what="t5")
    assert str(error.value) == (f"t5 (tiny-org/t5-noweights in the Hugging Face cache): the directory {snapshot} "
                                "does not hold a complete model: no weights (one of model.safetensors, "
                                "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json)")


def test_a_t5_conditioner_on_a_cached_model_without_tokenizer_is_refused(hub_cache, tiny_models):
    from cuecraft.conditioners.text import T5Conditioner

    cache_model(hub_cache, tiny_models["t5"], "tiny-org/t5-notok", "tokenizer.json")
    with pytest.raises(PretrainedModelNotFoundError, match=r"tiny-org/t5-notok in the Hugging Face cache.*"
                                                           r"no tokenizer file"):
        T5Conditioner(output_dim=32, t5_model_name="tiny-org/t5-notok")
