import dataclasses

import pytest
import torch
from torch.utils.data import DataLoader

from cuecraft.config import build_stack
from cuecraft.data import AudioCollate, AudioDataset, AudioItem
from cuecraft.errors import ConditioningInputError, DatasetError
from tests.data.wavs import write_wav

GENRES = ["rock", "jazz", "techno"]


def tiny_stack(cfg=0.5):
    return build_stack({
        "cond_dim": 8,
        "conditioners": [
            {"id": "description", "type": "lut", "roles": ["cross"], "config": {"n_bins": 64, "dim": 4}},
            {"id": "genre", "type": "list", "roles": ["prepend"], "config": {"options": GENRES}},
            {"id": "seconds_total", "type": "number", "roles": ["global"], "config": {"min_val": 0, "max_val": 10}},
        ],
        "dropout": {"cfg": cfg},
    }, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("collate")
    for i in range(8):
        write_wav(root / f"{i}.wav", 0.25 + 0.05 * i, 8000, 1, 200 + 50 * i,
                  sidecar={"genre": GENRES[i % 3], "description": f"piece number {i}"})
    return AudioDataset.from_folder(root, sample_rate=8000, segment_seconds=0.3, mode="sequential")


def flat(tokens):
    """{name: Tokens} -> {name.field: tensor}, to compare token sets."""
    return {f"{name}.{i}": t for name, tok in tokens.items() for i, t in enumerate(tok)}


def assert_same_tokens(a, b):
    fa, fb = flat(a), flat(b)
    assert fa.keys() == fb.keys()
    for key in fa:
        assert torch.equal(fa[key], fb[key]), key


def test_batch_holds_padded_waveforms_masks_metadata_and_tokens(dataset):
    collate = AudioCollate(tiny_stack(cfg=0.0), seed=3)
    batch = collate([dataset[i] for i in range(3)])
    assert batch.wav.shape == (3, 1, 2400) and batch.padding_mask.shape == (3, 2400)
    assert batch.padding_mask.sum(dim=1).tolist() == [2000, 2400, 2400]  # 0.25 s, 0.3 s (of 0.3 s), ...
    assert batch.metadata[0] == {"genre": "rock", "description": "piece number 0", "seconds_start": 0, "seconds_total": 1}
    assert "self_wav" not in batch.metadata[0]
    assert set(batch.tokens) == {"description", "genre", "seconds_total"}
    assert batch.tokens["genre"].mask.all()  # cfg 0: nothing dropped
    conditions = collate.stack.provider(batch.to("cpu").tokens)  # the training step: forward only
    assert conditions["genre"].embedding.shape == (3, 1, 8)
    assert batch.seed == collate.batch_seed([dataset[i] for i in range(3)])


def test_whole_files_are_padded_to_the_longest_and_none_items_are_dropped(tmp_path):
    for i, seconds in enumerate([0.1, 0.25, 0.2]):
        write_wav(tmp_path / f"{i}.wav", seconds, 8000)
    ds = AudioDataset.from_folder(tmp_path, sample_rate=8000)
    batch = AudioCollate()([ds[0], None, ds[1], ds[2]])
    assert batch.wav.shape == (3, 1, 2000) and batch.padding_mask.sum(dim=1).tolist() == [800, 2000, 1600]
    assert torch.all(batch.wav[0, :, 800:] == 0) and batch.dropped == 1 and batch.tokens is None
    empty = AudioCollate(tiny_stack())([None, None])
    assert len(empty) == 0 and empty.dropped == 2 and empty.tokens is None


def test_workers_give_the_tokens_of_the_main_process(dataset):
    collate = AudioCollate(tiny_stack(cfg=0.5), seed=11)
    main = [collate([dataset[i] for i in range(start, min(start + 3, len(dataset)))])
            for start in range(0, len(dataset), 3)]
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=collate)
    workers = list(loader)
    assert len(dataset) == 14 and len(workers) == len(main) == 5
    for a, b in zip(main, workers):
        assert a.seed == b.seed and a.paths == b.paths
        assert torch.equal(a.wav, b.wav) and torch.equal(a.padding_mask, b.padding_mask)
        assert_same_tokens(a.tokens, b.tokens)
    kept = torch.cat([b.tokens["genre"].mask[:, 0] for b in workers])
    assert 0 < kept.sum() < len(kept)  # the dropout really drew from the generator
    alone = collate([dataset[i] for i in (12, 13)])  # batch order does not matter, only content
    assert alone.seed == main[4].seed


def test_epoch_and_seed_change_the_draws(dataset):
    items = [dataset[i] for i in range(4)]
    collate = AudioCollate(tiny_stack(), seed=0)
    first = collate.batch_seed(items)
    collate.set_epoch(1)
    assert collate.batch_seed(items) != first
    assert AudioCollate(seed=1).batch_seed(items) != first


def test_augment_runs_first_from_the_batch_generator(dataset):
    drawn = []

    def augment(items, generator):
        drawn.append(torch.rand(1, generator=generator).item())
        return [dataclasses.replace(item, metadata={**item.metadata, "genre": "techno"}) for item in items]

    collate = AudioCollate(tiny_stack(cfg=0.0), seed=5, augment=augment)
    batch = collate([dataset[0], dataset[1]])
    assert drawn == [torch.rand(1, generator=torch.Generator().manual_seed(batch.seed)).item()]
    assert [m["genre"] for m in batch.metadata] == ["techno", "techno"]
    stack = collate.stack
    expected = stack.tokenize([{"genre": "techno", "description": None, "seconds_total": 1}] * 2)["genre"]
    assert torch.equal(batch.tokens["genre"].values, expected.values)


def test_missing_fields_are_null_conditions_or_errors(dataset):
    bare = AudioItem(torch.zeros(1, 4), 8000, torch.ones(4, dtype=torch.bool), metadata={"seconds_total": 2}, path="x")
    batch = AudioCollate(tiny_stack(cfg=0.0))([bare, dataset[0]])
    assert batch.tokens["genre"].mask[:, 0].tolist() == [False, True]
    assert batch.tokens["description"].mask[0].sum() == 0 and batch.tokens["description"].mask[1].any()
    with pytest.raises(ConditioningInputError, match="missing key 'description'"):
        AudioCollate(tiny_stack(), missing="error")([bare])


def test_collate_errors():
    with pytest.raises(DatasetError, match="needs a stack with tokenize"):
        AudioCollate(object())
    a = AudioItem(torch.zeros(1, 4), 8000, torch.ones(4, dtype=torch.bool), path="a")
    b = AudioItem(torch.zeros(2, 4), 8000, torch.ones(4, dtype=torch.bool), path="b")
    with pytest.raises(DatasetError, match=r"different channels \[1, 2\]"):
        AudioCollate()([a, b])
