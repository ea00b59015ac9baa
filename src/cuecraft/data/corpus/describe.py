"""Words for a corpus piece: moods, genre and a natural-language description in varied wording.

Every description names the key (canonical, "A minor"), the tempo ("128 bpm"), the lead
instrument and whether drums play ("with drums" / "with a waltz drum beat" / "no drums" /
"without drums"), so a text encoder sees each label; the wording around them varies.
"""

from __future__ import annotations

import numpy as np

_TEMPO_MOODS = ((80, ("slow", "calm", "gentle", "laid-back")), (110, ("mellow", "relaxed", "steady", "easy-going")),
                (140, ("upbeat", "lively", "bouncy", "cheerful")), (999, ("energetic", "fast", "driving", "brisk")))
_MODE_MOODS = {"major": ("bright", "happy", "warm", "sunny"), "minor": ("melancholic", "dark", "moody", "wistful")}
_NOUNS = ("piece", "tune", "groove", "track", "loop", "song")


def moods_of(bpm: int, mode: str) -> tuple[str, ...]:
    """Two mood words: one from the tempo, one from the mode (the first of each list)."""
    tempo_words = next(words for limit, words in _TEMPO_MOODS if bpm < limit)
    return tempo_words[0], _MODE_MOODS[mode][0]


def genre_of(bpm: int, time_signature: str, drums: bool, drum_pattern: str | None) -> str:
    if time_signature == "3/4":
        return "waltz"
    if not drums:
        return "ballad" if bpm < 90 else "instrumental"
    if drum_pattern == "four on the floor":
        return "dance"
    return {"rock": "rock", "pop": "pop", "six-eight": "folk", "driving": "punk"}.get(drum_pattern or "", "pop")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(rng: np.random.Generator, *, bpm: int, key: str, time_signature: str, lead: str,
             instruments: tuple[str, ...], drums: bool, drum_pattern: str | None, moods: tuple[str, ...],
             genre: str) -> str:
    """A one-sentence description from the fields, wording drawn from ``rng``."""
    tempo_words = next(words for limit, words in _TEMPO_MOODS if bpm < limit)
    mode = key.split()[1]
    mood = str(rng.choice(tempo_words + _MODE_MOODS[mode]))
    noun = "waltz" if genre == "waltz" and rng.random() < 0.5 else str(rng.choice(_NOUNS))
    others = [i for i in instruments if i != lead]
    if drums:
        drum_phrase = str(rng.choice(["with drums", f"with a {drum_pattern} drum beat", "over a drum kit",
                                      f"with {drum_pattern} drums"]))
    else:
        drum_phrase = str(rng.choice(["no drums", "without drums", "with no drums"]))
    bpm_word = str(rng.choice(["bpm", "BPM"]))
    templates = (
        lambda: f"{_article(mood)} {mood} {lead} {noun} in {key} at {bpm} {bpm_word} {drum_phrase}",
        lambda: f"{mood.capitalize()} {noun} in {key}, {bpm} {bpm_word}, {time_signature} time: {lead} melody"
                + (f" over {_join(others)}" if others else "") + f", {drum_phrase}",
        lambda: f"{lead.capitalize()} leads {_article(mood)} {mood} {genre} {noun} in {key} at {bpm} {bpm_word}"
                + (f" with {_join(others)}" if others else "") + f"; {drum_phrase}",
        lambda: f"{bpm} {bpm_word} {mood} {noun} in {key} ({time_signature}) featuring {_join(list(instruments))}, "
                + drum_phrase,
        lambda: f"{_article(genre).capitalize()} {genre} {noun} in {key} played on {_join(list(instruments))}, "
                f"tempo {bpm} {bpm_word}, {time_signature}, {drum_phrase}",
        lambda: f"{key} {mood} {noun} at {bpm} {bpm_word}: the {lead} carries the melody, {drum_phrase}",
    )
    return templates[int(rng.integers(len(templates)))]()
