"""The served page refuses an upload larger than MAX_UPLOAD_BYTES and keeps nothing of it (issue 23:
a 300 MB upload was accepted and kept)."""

import pytest

pytest.importorskip("gradio")
httpx = pytest.importorskip("httpx")


def test_an_upload_past_the_limit_is_refused(tiny_pipe, monkeypatch):
    from cuecraft.ui import app as ui_app
    from tests.ui.conftest import _free_port

    monkeypatch.setattr(ui_app, "MAX_UPLOAD_BYTES", 4096)  # the same rule as 64 MB, without sending 64 MB
    page = ui_app.build_app(tiny_pipe)
    ui_app.launch(page, host="127.0.0.1", port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        url = page.local_url.rstrip("/") + "/gradio_api/upload"
        small = httpx.post(url, files={"files": ("a.wav", b"RIFF" + b"\0" * 1000)}, timeout=30)
        large = httpx.post(url, files={"files": ("b.wav", b"RIFF" + b"\0" * 10_000)}, timeout=30)
    finally:
        page.close()
    assert small.status_code == 200, small.text
    assert large.status_code == 413, (large.status_code, large.text[:300])
