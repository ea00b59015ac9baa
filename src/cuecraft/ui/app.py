"""The gradio web UI of ``cuecraft ui``: generation with a cuecraft model, its conditions, and MusicLDM.

    pipe = cuecraft.load_builtin()
    app = build_app(pipe, musicldm_dir=None, concurrency=1)
    launch(app, host="127.0.0.1", port=7860)

Tabs:

1. Generate: prompt, negative prompt, tempo, key, instrument, drums, melody (upload or record),
   time signature, first downbeat and chords (models with a ``beats`` / ``chords`` conditioner),
   seconds, steps, guidance, seed, candidates -> a player, a log-mel spectrogram and a chroma image
   per candidate (best first) and a table of the measured tempo and key beside what was asked.
   Only the controls the model has are shown. API name ``/generate`` (inputs in
   ``GenerateInputs`` order; outputs: table, asked line, then audio, spectrogram, chroma per slot).
2. Conditions: for the Generate tab's current inputs, what the model receives (``cuecraft
   condition``'s rows: type, roles, shape, mask coverage). API name ``/conditions``.
3. MusicLDM, with ``musicldm_dir``: text to music with a local MusicLDM model. API ``/musicldm``.

Requests go through gradio's queue with ``concurrency`` running at once; sampling reports its
progress to the page; a bad input is a message in the page (the ``GenerationInputError`` lines),
never a traceback. Nothing reaches the network: analytics are off and nothing is shared.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cuecraft._optional import require
from cuecraft.errors import CuecraftError, GenerationInputError
from cuecraft.pipelines.generate import GenerationPipeline
from cuecraft.ui.actions import (
    ANY, CONDITION_INPUTS, CONDITIONS_HEADER, MAX_CANDIDATES, MEASURED_HEADER, GenerateInputs, conditions_for,
    generate_clicked,
)

DEFAULT_BPM = 120.0  # the tempo slider's starting value (clipped to the model's range)
METRES = ("4/4", "3/4", "6/8", "2/4", "12/8")  # the time-signature dropdown's choices (others can be typed)
IMAGE_BUTTONS = ["download", "fullscreen"]  # not "share" (it posts to a hub)


def _gradio() -> Any:
    return require("gradio", extra="ui", purpose="the web UI (cuecraft ui)")


def page_error(error: CuecraftError) -> Exception:
    """The gradio message for ``error``: its problem lines, HTML-escaped, one per line; no traceback."""
    gr = _gradio()
    lines = getattr(error, "problems", None) or [str(error)]
    title = "Cannot generate" if isinstance(error, GenerationInputError) else "Error"
    return gr.Error("<br>".join(html.escape(str(line)) for line in lines), title=title, print_exception=False)


def _page_progress(progress: Any) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        progress((done, total), desc="sampling", unit="steps")
    return show


def _model_summary(pipe: GenerationPipeline) -> str:
    shown = ("prompt", "negative_prompt", "bpm", "key", "instrument", "drums", "melody", "time_signature",
             "downbeat_offset", "chords")
    controls = [name for name in pipe.controls if name in shown]
    others = [name for name in pipe.controls if name not in shown]
    line = (f"**model** `{pipe.name}` · {pipe.sample_rate} Hz · up to {pipe.max_seconds:g} s · controls: "
            f"{', '.join(controls) or 'none'}")
    if others:
        line += f" (not in this page: {', '.join(others)})"
    return line


def _generate_widgets(gr: Any, pipe: GenerationPipeline) -> dict[str, Any]:
    """One widget per GenerateInputs field; a control the model lacks is hidden (and left at its null)."""
    controls = pipe.controls

    def options(name: str) -> list[str]:
        if name in controls and controls[name].kind == "key":  # a chords model reads any key
            from cuecraft.audio.key import KEYS

            return [ANY, *KEYS]
        return [ANY, *(controls[name].options or ())] if name in controls else [ANY]

    low, high = controls["bpm"].range if "bpm" in controls else (40.0, 240.0)
    w: dict[str, Any] = {}
    w["prompt"] = gr.Textbox(label="prompt", placeholder="an upbeat electric piano groove", lines=2,
                             visible="prompt" in controls, elem_id="prompt")
    w["negative_prompt"] = gr.Textbox(label="negative prompt", placeholder="what the music should not be",
                                      visible="negative_prompt" in controls)
    with gr.Row():
        w["tempo_on"] = gr.Checkbox(label="set tempo", value=False, scale=1, visible="bpm" in controls)
        w["bpm"] = gr.Slider(low, high, value=min(max(DEFAULT_BPM, low), high), step=1, label="tempo (bpm)",
                             scale=3, visible="bpm" in controls)
    with gr.Row():
        w["key"] = gr.Dropdown(options("key"), value=ANY, label="key", visible="key" in controls)
        w["instrument"] = gr.Dropdown(options("instrument"), value=ANY, label="instrument",
                                      visible="instrument" in controls)
        w["drums"] = gr.Radio(options("drums"), value=ANY, label="drums", visible="drums" in controls)
    with gr.Row():  # beats / chords models: they go with the tempo
        w["time_signature"] = gr.Dropdown([ANY, *METRES], value=ANY, allow_custom_value=True, label="time signature",
                                          visible="time_signature" in controls)
        w["downbeat_offset"] = gr.Number(value=None, label="first downbeat (s)", visible="downbeat_offset" in controls)
    w["chords"] = gr.Textbox(label="chords", placeholder="Am F C G (one per bar at the tempo) or Am@0 F@2 (seconds)",
                             visible="chords" in controls)
    w["melody"] = gr.Audio(sources=["upload", "microphone"], type="filepath", label="melody (its chroma is followed)",
                           visible="melody" in controls, buttons=["download"])
    w["seconds"] = gr.Slider(min(0.1, pipe.max_seconds), pipe.max_seconds, value=pipe.max_seconds, step=0.1,
                             label="seconds")
    with gr.Accordion("sampling", open=True):
        with gr.Row():
            w["steps"] = gr.Slider(1, 200, value=25, step=1, label="steps")
            w["guidance"] = gr.Number(value=float(pipe.stack.guidance_scale), label="guidance")
        with gr.Row():
            w["seed"] = gr.Number(value=0, precision=0, label="seed")
            w["candidates"] = gr.Slider(1, MAX_CANDIDATES, value=1, step=1, label="candidates (ranked by tempo/key)")
    return w


def build_app(pipe: GenerationPipeline, *, musicldm_dir: str | os.PathLike[str] | None = None,
              concurrency: int = 1) -> Any:
    """The ``gr.Blocks`` page over ``pipe`` (and a MusicLDM tab with ``musicldm_dir``); see the module docstring."""
    gr = _gradio()
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise GenerationInputError(f"concurrency: expected an int >= 1 (requests run at once); got {concurrency!r}")
    musicldm = _load_musicldm(musicldm_dir) if musicldm_dir is not None else None

    with gr.Blocks(title="cuecraft", analytics_enabled=False) as app:
        gr.Markdown("## cuecraft\n" + _model_summary(pipe))
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=2):
                        widgets = _generate_widgets(gr, pipe)
                        button = gr.Button("Generate", variant="primary", elem_id="generate")
                    with gr.Column(scale=3):
                        asked = gr.Markdown(elem_id="asked")
                        table = gr.Dataframe(headers=list(MEASURED_HEADER), interactive=False,
                                             label="measured beside asked")
                        slots = []
                        for i in range(MAX_CANDIDATES):
                            player = gr.Audio(label=f"candidate {i + 1}", type="numpy", interactive=False,
                                              visible=i == 0, elem_id=f"audio-{i}", buttons=["download"])
                            with gr.Row():
                                images = [gr.Image(label=f"candidate {i + 1}: {kind}", type="numpy", format="png",
                                                   interactive=False, visible=i == 0, buttons=IMAGE_BUTTONS,
                                                   show_label=False)  # the plot carries its title
                                          for kind in ("spectrogram", "chroma")]
                            slots.append((player, *images))
            with gr.Tab("Conditions", id="conditions"):
                gr.Markdown("What the model receives for the Generate tab's inputs (the negative prompt only "
                            "replaces the unconditional branch of guidance, so it is not listed).")
                show = gr.Button("Show conditions", elem_id="show-conditions")
                conditions = gr.Dataframe(headers=list(CONDITIONS_HEADER), interactive=False, label="conditions")
            if musicldm is not None:
                with gr.Tab("MusicLDM", id="musicldm"):
                    _musicldm_tab(gr, musicldm, Path(musicldm_dir).name)

        inputs = [widgets[name] for name in GenerateInputs.names()]
        outputs = [table, asked, *(component for slot in slots for component in slot)]

        # explicit parameters: gradio finds the progress tracker by its position in the signature
        def on_generate(prompt: Any, negative_prompt: Any, tempo_on: Any, bpm: Any, key: Any, instrument: Any,
                        drums: Any, melody: Any, seconds: Any, steps: Any, guidance: Any, seed: Any, candidates: Any,
                        time_signature: Any, chords: Any, downbeat_offset: Any,
                        progress: Any = gr.Progress()) -> list[Any]:
            values = GenerateInputs(prompt, negative_prompt, tempo_on, bpm, key, instrument, drums, melody, seconds,
                                    steps, guidance, seed, candidates, time_signature, chords, downbeat_offset)
            try:
                shown = generate_clicked(pipe, values, progress=_page_progress(progress))
            except CuecraftError as error:
                raise page_error(error) from None
            for text in shown.warnings:
                gr.Warning(text)
            updates: list[Any] = [shown.table, shown.asked]
            for i in range(MAX_CANDIDATES):
                kept = i < len(shown.audio)
                updates += [gr.update(value=shown.audio[i] if kept else None, visible=kept),
                            gr.update(value=shown.spectrograms[i] if kept else None, visible=kept),
                            gr.update(value=shown.chromas[i] if kept else None, visible=kept)]
            return updates

        def on_conditions(*values: Any) -> list[list[Any]]:
            try:
                return conditions_for(pipe, GenerateInputs(**dict(zip(CONDITION_INPUTS, values))))
            except CuecraftError as error:
                raise page_error(error) from None

        button.click(on_generate, inputs=inputs, outputs=outputs, api_name="generate")
        show.click(on_conditions, inputs=[widgets[name] for name in CONDITION_INPUTS], outputs=conditions,
                   api_name="conditions")
    app.queue(default_concurrency_limit=concurrency)
    return app


def _load_musicldm(directory: str | os.PathLike[str]) -> Any:
    from cuecraft.pipelines import MusicLDMPipeline

    return MusicLDMPipeline.from_pretrained(os.fspath(directory))


def _musicldm_tab(gr: Any, pipeline: Any, name: str) -> None:
    from cuecraft.ui.musicldm import DEFAULTS, SCORES_HEADER, MusicLDMInputs, musicldm_clicked

    gr.Markdown(f"Text to music with the MusicLDM model `{name}`; candidates are ranked by CLAP similarity "
                "to the prompt.")
    with gr.Row():
        with gr.Column(scale=2):
            w = {"prompt": gr.Textbox(label="prompt", lines=2, elem_id="musicldm-prompt"),
                 "negative_prompt": gr.Textbox(label="negative prompt"),
                 "seconds": gr.Slider(1, 30, value=DEFAULTS["seconds"], step=0.5, label="seconds"),
                 "steps": gr.Slider(1, 200, value=DEFAULTS["steps"], step=1, label="steps"),
                 "guidance": gr.Number(value=DEFAULTS["guidance"], label="guidance (> 1 turns it on)"),
                 "seed": gr.Number(value=0, precision=0, label="seed"),
                 "candidates": gr.Slider(1, MAX_CANDIDATES, value=1, step=1, label="candidates")}
            button = gr.Button("Generate with MusicLDM", variant="primary", elem_id="musicldm-generate")
        with gr.Column(scale=3):
            scores = gr.Dataframe(headers=list(SCORES_HEADER), interactive=False, label="ranking")
            players = [gr.Audio(label=f"candidate {i + 1}", type="numpy", interactive=False, visible=i == 0,
                                buttons=["download"])
                       for i in range(MAX_CANDIDATES)]

    def on_musicldm(prompt: Any, negative_prompt: Any, seconds: Any, steps: Any, guidance: Any, seed: Any,
                    candidates: Any, progress: Any = gr.Progress()) -> list[Any]:
        values = MusicLDMInputs(prompt, negative_prompt, seconds, steps, guidance, seed, candidates)
        try:
            audio, rows = musicldm_clicked(pipeline, values, progress=_page_progress(progress))
        except CuecraftError as error:
            raise page_error(error) from None
        return [rows, *(gr.update(value=audio[i] if i < len(audio) else None, visible=i < len(audio))
                        for i in range(MAX_CANDIDATES))]

    button.click(on_musicldm, inputs=[w[name] for name in MusicLDMInputs.names()], outputs=[scores, *players],
                 api_name="musicldm")


MAX_UPLOAD_BYTES = 64 * 2**20  # an uploaded melody recording; gradio refuses (413) and does not keep a larger one


def launch(app: Any, *, host: str = "127.0.0.1", port: int = 7860, prevent_thread_lock: bool = False,
           quiet: bool = False) -> Any:
    """Serve ``app`` on ``host:port``, offline: no share link, no telemetry, no version check, uploads
    of at most MAX_UPLOAD_BYTES.

    gradio's launch-time telemetry and version check read ``GRADIO_ANALYTICS_ENABLED`` (not the
    Blocks' own setting), so it is set to ``False`` here, when serving starts.
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    return app.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=True,
                      prevent_thread_lock=prevent_thread_lock, quiet=quiet, footer_links=["api", "settings"],
                      mcp_server=False, ssr_mode=False, max_file_size=MAX_UPLOAD_BYTES)
