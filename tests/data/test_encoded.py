import json
import math
import os

import pytest
import safetensors.torch
import torch
from torch.utils.data import DataLoader

from cuecraft.cli import main
from cuecraft.config import build_stack
from cuecraft.data import AudioDataset, EncodedCollate, EncodedDataset, encode_dataset
from cuecraft.data.encoded import INFO_FILE, item_files, item_name, representation_fingerprint
from cuecraft.errors import DatasetError
from cuecraft.models.representation import MelOptions, MelRepresentation, Vocoder, VocoderOptions
from tests.data.test_collate import assert_same_tokens, tiny_stack
from tests.data.wavs import write_wav

RATE, HOP = 8000, 64
GENRES = ["rock", "jazz", "techno"]


def mel(n_mels=16, fit=None):
    representation = MelRepresentation(MelOptions(sample_rate=RATE, n_fft=256, hop=HOP, n_mels=n_mels))
    return representation if fit is None else representation.fit_stats(fit)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoded") / "data"
    for i, seconds in enumerate([0.5, 0.9, 0.25]):
        write_wav(root / f"{i}.wav", seconds, RATE, 1, 300 + 150 * i,
                  sidecar={"genre": GENRES[i], "description": f"piece number {i}"})
    write_wav(root / "loud.wav", 0.6, 16000, 2, 500, sidecar={"genre": "rock"})  # resampled, mixed to mono
    return root


@pytest.fixture(scope="module")
def dataset(data):
    return AudioDataset.from_folder(data, sample_rate=RATE, segment_seconds=0.4, mode="sequential")


@pytest.fixture(scope="module")
def representation(dataset):
    return mel(fit=[dataset[i] for i in range(len(dataset))])


@pytest.fixture(scope="module")
def encoded(dataset, representation, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "enc"
    report = encode_dataset(dataset, representation, out, batch_size=3)
    return out, report


def stored(out, item):
    tensors, meta = item_files(out, item_name(item.path, item.seek_time))
    return safetensors.torch.load_file(str(tensors)), json.loads(meta.read_text())


def test_latents_are_the_representation_of_each_segment_and_metadata_is_carried(dataset, representation, encoded):
    out, report = encoded
    assert len(dataset) == 8  # 0.5 s: 2 segments, 0.9 s: 3, 0.25 s: 1, 0.6 s: 2
    assert (report.items, report.encoded, report.skipped, report.dropped) == (8, 8, 0, 0)
    assert report.seconds == pytest.approx(0.5 + 0.9 + 0.25 + 0.6)
    for index in range(len(dataset)):
        item = dataset[index]
        tensors, record = stored(out, item)
        expected = representation.encode(item.wav[None])[0]  # [D, L]
        assert tensors["latents"].dtype == torch.float32 and tensors["latents"].shape == (16, 50)
        assert torch.allclose(tensors["latents"], expected, atol=1e-6, rtol=0)
        assert int(tensors["valid_frames"][0]) == record["frames"] == math.ceil(item.length / HOP)
        assert record["path"] == item.path and record["seek_time"] == pytest.approx(item.seek_time)
        assert record["metadata"] == item.metadata  # sidecar fields, seconds_start, seconds_total
    last = dataset[4]  # the third segment of the 0.9 s file: 0.1 s of audio
    assert stored(out, last)[1]["metadata"] == {"genre": "jazz", "description": "piece number 1",
                                                "seconds_start": 0, "seconds_total": 1}
    assert stored(out, last)[1]["frames"] == 13  # ceil(800 / 64)
    info = json.loads((out / INFO_FILE).read_text())
    assert info["format"] == "cuecraft.encoded" and info["version"] == 1 and info["complete"] is True
    assert info["frame_rate"] == 125.0 and info["latent_dim"] == 16 and info["segment_frames"] == 50
    assert info["representation"]["fingerprint"] == representation_fingerprint(representation) == report.fingerprint
    assert info["representation"]["settings"]["options"]["n_mels"] == 16
    assert info["counts"] == {"items": 8, "files": 4, "frames": report.frames, "seconds": report.seconds, "dropped": 0}


def test_float16_storage_is_within_half_precision(dataset, representation, tmp_path):
    report = encode_dataset(dataset, representation, tmp_path / "half", batch_size=8, precision="float16")
    item = dataset[1]
    tensors, _ = stored(tmp_path / "half", item)
    expected = representation.encode(item.wav[None])[0]
    assert tensors["latents"].dtype == torch.float16 and report.encoded == 8
    assert (tensors["latents"].float() - expected).abs().max() <= 2 ** -11 * expected.abs().max()
    assert EncodedDataset(tmp_path / "half")[1].latents.dtype == torch.float32


def test_an_interrupted_run_resumes_skips_done_items_and_repairs_torn_ones(dataset, representation, encoded, tmp_path):
    out, calls = tmp_path / "resume", []
    original = representation.encode

    def failing(wav):
        calls.append(wav.shape[0])
        if len(calls) == 3:
            raise KeyboardInterrupt  # stopped during the third batch
        return original(wav)

    representation.encode = failing
    try:
        with pytest.raises(KeyboardInterrupt):
            encode_dataset(dataset, representation, out, batch_size=1)
        with pytest.raises(DatasetError, match="not finished"):
            EncodedDataset(out)
        torn = dataset[5]  # not encoded yet: leave half an item and a temporary file behind
        tensors, meta = item_files(out, item_name(torn.path, torn.seek_time))
        tensors.parent.mkdir(parents=True, exist_ok=True)
        tensors.write_bytes(b"half a safetensors file")
        (tensors.parent / f".{meta.name}.abc.tmp").write_text("{")
        calls.clear()
        representation.encode = lambda wav: (calls.append(wav.shape[0]), original(wav))[1]
        report = encode_dataset(dataset, representation, out, batch_size=1)
    finally:
        del representation.encode
    assert (report.skipped, report.encoded, report.repaired, report.items) == (2, 6, 2, 8)
    assert sum(calls) == 6  # only the missing items were encoded
    assert not list(out.rglob("*.tmp"))
    first, again = EncodedDataset(encoded[0], mode="sequential"), EncodedDataset(out, mode="sequential")
    assert [e["name"] for e in first.entries] == [e["name"] for e in again.entries]
    for index in range(len(first)):
        assert torch.equal(first[index].latents, again[index].latents)


def test_a_folder_refuses_another_representation_or_other_settings(dataset, representation, encoded, data, tmp_path):
    out = encoded[0]
    other = mel(n_mels=8)
    with pytest.raises(DatasetError) as error:
        encode_dataset(dataset, other, out)
    assert representation_fingerprint(representation) in str(error.value)
    assert representation_fingerprint(other) in str(error.value)
    with pytest.raises(DatasetError, match="precision 'float32'; this run has 'float16'"):
        encode_dataset(dataset, representation, out, precision="float16")
    longer = AudioDataset.from_folder(data, sample_rate=RATE, segment_seconds=0.5, mode="sequential")
    with pytest.raises(DatasetError, match="segment_samples 3200"):
        encode_dataset(longer, representation, out)
    # A vocoder only decodes: it does not change the fingerprint, other statistics do.
    voiced = mel(fit=[dataset[0]])
    voiced.load_state_dict(representation.state_dict())
    voiced.set_vocoder(Vocoder(VocoderOptions(n_mels=16, hop=HOP, n_fft=256, width=8, intermediate=8, layers=1)))
    assert representation_fingerprint(voiced) == representation_fingerprint(representation)
    assert representation_fingerprint(mel(fit=[dataset[0]])) != representation_fingerprint(representation)


def test_bad_inputs_are_typed_errors(data, representation, tmp_path):
    random = AudioDataset.from_folder(data, sample_rate=RATE, segment_seconds=0.4, mode="random")
    with pytest.raises(DatasetError, match="sequential segments"):
        encode_dataset(random, representation, tmp_path / "a")
    other_rate = AudioDataset.from_folder(data, sample_rate=16000, segment_seconds=0.4, mode="sequential")
    with pytest.raises(DatasetError, match="16000 Hz x 1 channel"):
        encode_dataset(other_rate, representation, tmp_path / "a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    sequential = AudioDataset.from_folder(data, sample_rate=RATE, segment_seconds=0.4, mode="sequential")
    with pytest.raises(DatasetError, match="not empty"):
        encode_dataset(sequential, representation, tmp_path / "full")
    with pytest.raises(DatasetError, match="batch_size must be a positive int"):
        encode_dataset(sequential, representation, tmp_path / "a", batch_size=0)
    with pytest.raises(DatasetError, match="not a pre-encoded dataset"):
        EncodedDataset(tmp_path / "full")


def test_encoded_dataset_windows_and_masks(encoded, dataset):
    out, _ = encoded
    whole = EncodedDataset(out)
    assert len(whole) == 8 and whole.latent_dim == 16 and whole.frame_rate == 125.0
    frames = [e["frames"] for e in whole.entries]
    assert frames == [50, 13, 50, 50, 13, 32, 50, 25]  # (path, seek_time) order
    for index, entry in enumerate(whole.entries):
        assert whole[index].latent_mask.sum() == entry["frames"] and whole[index].latents.shape == (16, 50)
    sequential = EncodedDataset(out, segment_frames=20, mode="sequential")
    assert len(sequential) == sum(math.ceil(f / 20) for f in frames)
    number, start = sequential.locate(2)  # the third window of the first stored item
    assert (number, start) == (0, 40)
    window, (latents, valid, record) = sequential[2], sequential.load(0)
    assert window.latents.shape == (16, 20) and window.latent_mask.sum() == min(valid - 40, 20)
    assert torch.equal(window.latents[:, :10], latents[:, 40:50]) and torch.all(window.latents[:, 10:] == 0)
    assert window.seek_time == pytest.approx(record["seek_time"] + 40 * HOP / RATE)
    random = EncodedDataset(out, segment_frames=30, mode="random", seed=4)
    starts = [random.locate(i)[1] for i in range(len(random))]
    assert starts == [EncodedDataset(out, segment_frames=30, seed=4).locate(i)[1] for i in range(len(random))]
    assert all(0 <= s <= max(f - 30, 0) for s, f in zip(starts, frames))
    random.set_epoch(1)
    assert [random.locate(i)[1] for i in range(len(random))] != starts
    item = random[0]
    assert item.latent_mask.sum() == min(30, frames[0] - random.locate(0)[1])


def test_collate_tokens_are_the_same_in_workers_and_in_the_main_process(encoded):
    dataset = EncodedDataset(encoded[0], segment_frames=20, mode="sequential")
    collate = EncodedCollate(tiny_stack(cfg=0.5), seed=11)
    main_batches = [collate([dataset[i] for i in range(s, min(s + 3, len(dataset)))])
                    for s in range(0, len(dataset), 3)]
    workers = list(DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate))
    assert len(workers) == len(main_batches) > 2
    for a, b in zip(main_batches, workers):
        assert torch.equal(a.latents, b.latents) and torch.equal(a.latent_mask, b.latent_mask)
        assert a.seed == b.seed and a.paths == b.paths
        assert_same_tokens(a.tokens, b.tokens)
    batch = main_batches[0]
    assert batch.latents.shape == (3, 16, 20) and batch.latent_mask.shape == (3, 20) and batch.frame_rate == 125.0
    assert set(batch.tokens) == {"description", "genre", "seconds_total"}
    dropped = [collate([dataset[0], dataset[1]]).tokens["genre"].mask for _ in range(2)]
    assert torch.equal(*dropped)  # the same items give the same dropouts
    assert len(EncodedCollate()([None])) == 0


def test_collate_refuses_conditions_that_need_the_waveform():
    stack = build_stack({"cond_dim": 8, "conditioners": [
        {"id": "melody", "type": "chroma_stem", "roles": ["prepend"], "config": {"sample_rate": RATE, "radix2_exp": 9,
                                                                                "duration": 0.5}},
        {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": GENRES}}]}, seed=0)
    with pytest.raises(DatasetError, match=r"conditions \['melody'\] read the waveform"):
        EncodedCollate(stack)


def test_cli_encodes_resumes_and_refuses_another_representation(data, representation, tmp_path, capsys):
    representation.save(tmp_path / "mel")
    args = ["data", "encode", os.fspath(data), "--representation", os.fspath(tmp_path / "mel"),
            "--out", os.fspath(tmp_path / "enc"), "--seconds", "0.4", "--batch-size", "4", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "enc: 8 items (" in out and ": 8 encoded, 0 already done" in out
    assert main(args) == 0
    assert "0 encoded, 8 already done" in capsys.readouterr().out
    mel(n_mels=8).save(tmp_path / "other")
    assert main(args[:3] + ["--representation", os.fspath(tmp_path / "other")] + args[5:]) == 2
    assert "cuecraft data encode: error:" in capsys.readouterr().err
    assert len(EncodedDataset(tmp_path / "enc")) == 8


def test_shards_encode_the_same_items_with_any_worker_count_and_resume(representation, tmp_path):
    from tests.data.test_shards import write_shards

    write_shards(tmp_path / "shards", shards=2, per_shard=2)
    shards = AudioDataset.from_shards(os.fspath(tmp_path / "shards"), sample_rate=RATE, segment_seconds=0.4,
                                      mode="sequential")
    one = encode_dataset(shards, representation, tmp_path / "one", batch_size=3)
    two = encode_dataset(shards, representation, tmp_path / "two", batch_size=3, workers=2)
    assert one.items == two.items == 8 and two.encoded == 8  # 4 members of 0.5 s: 2 segments each
    a, b = EncodedDataset(tmp_path / "one"), EncodedDataset(tmp_path / "two")
    assert [e["name"] for e in a.entries] == [e["name"] for e in b.entries]
    assert all(torch.equal(a[i].latents, b[i].latents) for i in range(len(a)))
    assert a[0].metadata["genre"] == "jazz" and a[0].path.endswith(":s0k0")
    again = encode_dataset(shards, representation, tmp_path / "two", workers=2)
    assert (again.encoded, again.skipped) == (0, 8)
