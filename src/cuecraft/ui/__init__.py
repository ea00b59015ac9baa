"""The web UI (``cuecraft ui``): a gradio page over ``cuecraft.pipelines`` only.

``build_app(pipe)`` makes the page and ``launch(app)`` serves it offline; the functions behind its
buttons (``generate_clicked``, ``conditions_for``) are plain and need no server. gradio is the
``ui`` extra, imported when a page is built.
"""

from cuecraft.ui.actions import GenerateInputs, GenerateOutput, conditions_for, generate_clicked, request_of
from cuecraft.ui.app import build_app, launch

__all__ = ["GenerateInputs", "GenerateOutput", "build_app", "conditions_for", "generate_clicked", "launch",
           "request_of"]
