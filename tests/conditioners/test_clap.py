import math

import pytest
import torch
import torch.nn.functional as F
from transformers import ClapModel, ClapProcessor

from cuecraft.attributes import JointEmbedCondition
from cuecraft.conditioners import ClapConditioner, ClapTextConditioner
from cuecraft.errors import ConfigError
from cuecraft.guidance import ClassifierFreeGuidanceDropout, unconditional
from cuecraft.provider import ConditionProvider


@pytest.fixture(scope="module")
def reference(tiny_models):
    return ClapModel.from_pretrained(tiny_models["clap"]).eval(), ClapProcessor.from_pretrained(tiny_models["clap"])


def features(output):
    """ClapModel.get_*_features returns a tensor (transformers 4) or an output object (5)."""
    return output if torch.is_tensor(output) else output.pooler_output


def test_clap_text_equals_get_text_features(tiny_models, reference):
    model, processor = reference
    conditioner = ClapTextConditioner(clap_model_name=tiny_models["clap"]).eval()
    texts = ["deep house", "warm jazz guitar with drums"]
    with torch.no_grad():
        embedding, mask = conditioner.condition(texts)
        encoded = processor.tokenizer(texts, padding="longest", return_tensors="pt")
        expected = features(model.get_text_features(**encoded))
    assert embedding.shape == (2, 1, 16) and mask.all()
    torch.testing.assert_close(embedding[:, 0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(embedding.norm(dim=-1), torch.ones(2, 1))


@pytest.mark.parametrize("layer", [-1, -2])
def test_clap_text_features_of_a_layer(tiny_models, reference, layer):
    model, processor = reference
    conditioner = ClapTextConditioner(clap_model_name=tiny_models["clap"], use_text_features=True,
                                      feature_layer_ix=layer).eval()
    texts = ["deep house", "warm jazz guitar with drums"]
    with torch.no_grad():
        embedding, mask = conditioner.condition(texts)
        encoded = processor.tokenizer(texts, padding="longest", return_tensors="pt")
        hidden = model.text_model(**encoded, output_hidden_states=True).hidden_states[layer]
    assert torch.equal(mask, encoded["attention_mask"].bool())
    torch.testing.assert_close(embedding, hidden * mask.unsqueeze(-1), rtol=1e-5, atol=1e-6)
    assert conditioner.output_dim == 32


def test_clap_text_layer_out_of_range(tiny_models):
    with pytest.raises(ConfigError, match=r"feature_layer_ix: the model has 2 layers .*got -4"):
        ClapTextConditioner(clap_model_name=tiny_models["clap"], use_text_features=True, feature_layer_ix=-4)


def tone(seconds, rate, frequency=440.0):
    t = torch.arange(int(seconds * rate)) / rate
    return torch.sin(2 * math.pi * frequency * t)


def test_joint_audio_is_windowed_and_averaged(tiny_models, reference):
    model, processor = reference
    conditioner = ClapConditioner(clap_model_name=tiny_models["clap"])
    wav = torch.stack([tone(2.5, 8000), tone(2.5, 8000, 660.0)])  # stereo, 2.5 windows
    item = JointEmbedCondition(wav=wav, sample_rate=8000, text="deep house")
    tokens = conditioner.tokenize([item], train=True)  # training: audio
    assert tokens.window_owner.tolist() == [0, 0, 0] and tokens.text_rows.numel() == 0
    with torch.no_grad():
        embedding = conditioner(tokens).embedding
        mono = wav.mean(0).numpy()
        windows = [mono[:8000], mono[8000:16000], mono[16000:]]
        inputs = processor.feature_extractor(windows, sampling_rate=8000, return_tensors="pt")
        per_window = features(model.get_audio_features(input_features=inputs["input_features"],
                                                       is_longer=inputs["is_longer"]))
    torch.testing.assert_close(embedding[0, 0], F.normalize(per_window.mean(0), dim=0), rtol=1e-5, atol=1e-6)


def test_joint_resamples_to_clap_rate(tiny_models):
    conditioner = ClapConditioner(clap_model_name=tiny_models["clap"]).train()
    windows = conditioner.audio_windows(JointEmbedCondition(wav=tone(1.5, 16000), sample_rate=16000))
    assert [w.size for w in windows] == [8000, 4000]


def test_joint_text_at_inference_audio_in_training_with_fallback(tiny_models, reference):
    model, processor = reference
    conditioner = ClapConditioner(clap_model_name=tiny_models["clap"])
    both = JointEmbedCondition(wav=tone(1.0, 8000), sample_rate=8000, text="deep house")
    audio_only = JointEmbedCondition(wav=tone(1.0, 8000), sample_rate=8000)
    text_only = JointEmbedCondition(text="deep house")
    with torch.no_grad():
        # The train flag chooses the source, whatever the module's mode.
        evaluation = conditioner.train().condition([both, audio_only, text_only]).embedding[:, 0]
        training = conditioner.eval().condition([both, audio_only, text_only], train=True).embedding[:, 0]
        text = features(model.get_text_features(**processor.tokenizer(["deep house"], return_tensors="pt")))[0]
    torch.testing.assert_close(evaluation[0], text, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(evaluation[2], text, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(evaluation[1], training[0], rtol=1e-5, atol=1e-6)  # fallback to audio
    torch.testing.assert_close(training[1], training[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(training[2], text, rtol=1e-5, atol=1e-6)  # fallback to text
    swapped = ClapConditioner(clap_model_name=tiny_models["clap"], eval_source="audio").eval()
    with torch.no_grad():
        torch.testing.assert_close(swapped.condition([both]).embedding[0, 0], training[0], rtol=1e-5, atol=1e-6)


def test_joint_is_nullified_by_dropout_like_any_condition(tiny_models):
    provider = ConditionProvider({"clap": ClapConditioner(clap_model_name=tiny_models["clap"], project_out=True)})
    batch = provider.to_attributes([{"clap": JointEmbedCondition(wav=tone(1.0, 8000), sample_rate=8000, text="bass")}] * 2)
    with torch.no_grad():
        dropped = provider.condition(ClassifierFreeGuidanceDropout(1.0)(batch))["clap"]
        inference = provider.condition(unconditional(batch))["clap"]
        kept = provider.condition(batch)["clap"]
    assert torch.equal(dropped.embedding, inference.embedding) and torch.count_nonzero(dropped.embedding) == 0
    assert not dropped.mask.any() and kept.mask.all()


def test_joint_config_errors(tiny_models):
    with pytest.raises(ConfigError) as error:
        ClapConditioner(clap_model_name=tiny_models["clap"], train_source="video", autocast_dtype="half")
    assert [p.split(":")[0] for p in error.value.problems] == ["autocast_dtype", "train_source"]


def test_clap_text_from_an_already_loaded_model(tiny_models, reference):
    model, processor = reference
    wrapped = ClapTextConditioner.from_model(model, processor.tokenizer, padding="max_length").eval()
    loaded = ClapTextConditioner(clap_model_name=tiny_models["clap"]).eval()
    assert wrapped.encoder.text_model is model.text_model and wrapped.output_length == 1
    with torch.no_grad():
        torch.testing.assert_close(wrapped.condition(["deep house"]).embedding,
                                   loaded.condition(["deep house"]).embedding, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"\['clap_model_name'\]: unknown settings"):
        ClapTextConditioner.from_model(model, processor.tokenizer, clap_model_name="x")
