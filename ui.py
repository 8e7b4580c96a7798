"""Gradio chat: streamed answers, verified citations shown in their paragraph, uploads, cited briefings.

Started by `make run` on http://127.0.0.1:7860 (loopback only, no share link, analytics off). One Runtime
is opened at start; the generators load on first use and are reused. Requests queue, so several users
share the two cores without one request starving another.
"""

from __future__ import annotations

import argparse
import html
import logging
import tempfile
import time
from pathlib import Path

import gradio as gr  # noqa: I001

import rag  # noqa: F401  (sets the offline environment before gradio is imported)
from rag.ask import Answer, answer_stream
from rag.brief import Briefing, Progress, briefing_stream, to_docx, to_markdown
from rag.cli import failure_line, make_config, question_error, setup_logging
from rag.collection import add_file
from rag.load import SUFFIXES, LoadError, read_raw
from rag.models import generator_specs
from rag.service import Runtime

log = logging.getLogger("rag.ui")

EXAMPLES = ["荥经县如何改善空气质量？", "江源區的信貸資金是多少？", "How did 荥经 improve air quality?",
            "长寿区划定的经开区建设用地面积有多大？"]
CONTEXT_CHARS = 160
FORMATS = {"Markdown": ".md", "Word": ".docx"}
MAX_PASSAGES = 10  # the slider's range; gradio itself refuses values outside it


def sources_html(rt: Runtime, result: Answer) -> str:
    """Each citation: title, file, range, and the quote highlighted inside its surrounding text."""
    if result.refused:
        return f"<div class='refusal'><b>No answer in the documents.</b> {html.escape(result.reason)}</div>"
    parts = []
    for c in result.citations:
        raw = read_raw(rt.cfg.corpus / c.doc)  # the text citations point into (also for .docx/.pdf/.html)
        before = raw[max(0, c.start - CONTEXT_CHARS):c.start]
        after = raw[c.end:c.end + CONTEXT_CHARS]
        parts.append(
            f"<div class='source' id='source-{c.n}'><div class='source-head'><b>[{c.n}] {html.escape(c.title)}</b>"
            f" <code>{html.escape(c.doc)}</code> characters {c.start}–{c.end}</div>"
            f"<p style='white-space: pre-wrap'>…{html.escape(before)}<mark>{html.escape(c.quote)}</mark>{html.escape(after)}…</p></div>")
    return "\n".join(parts)


def passages_html(result: Answer) -> str:
    rows = [f"<li><b>{h.score:.4f}</b> <code>{html.escape(h.chunk.doc)}</code> {h.chunk.start}–{h.chunk.end}: "
            f"{html.escape(h.chunk.text[:300])}</li>" for h in result.retrieval.hits]
    variants = "".join(f"<p>searched also as: {html.escape(v)}</p>" for v in result.retrieval.variants)
    return variants + "<ol>" + "".join(rows) + "</ol>"


def save_briefing(b: Briefing, fmt: str, folder: Path) -> Path:
    """The briefing as a download, in a fresh folder of its own so concurrent requests never collide."""
    path = Path(tempfile.mkdtemp(dir=folder)) / f"briefing-{time.strftime('%Y%m%d-%H%M%S')}{FORMATS[fmt]}"
    if path.suffix == ".docx":
        to_docx(b, path)
    else:
        path.write_text(to_markdown(b), encoding="utf-8")
    return path


def chat_handler(rt: Runtime):
    """The chat turn for this runtime."""
    def respond(question: str, history: list, model: str, k: float):
        """One chat turn. Its settings (model, passages to read) belong to this request alone: nothing
        shared is written, so one user's slider never changes another user's answers."""
        history = list(history or [])
        error = question_error(question or "")
        if error:
            history += [{"role": "user", "content": question or ""}, {"role": "assistant", "content": f"⚠ {error}"}]
            yield history, "", "", ""
            return
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        yield history, "", "<i>searching…</i>", ""
        streamed = ""
        try:
            for item in answer_stream(rt, question, model, k=int(k)):
                if isinstance(item, str):
                    streamed += item
                    history[-1] = {"role": "assistant", "content": streamed}
                    yield history, "", "<i>verifying citations…</i>", ""
                else:
                    label = "🚫 " if item.refused else ""
                    timing = item.timings.get("total_s", 0)
                    open_parts = "".join(f"\n\n🚫 {html.escape(q)} — not found in the documents." for q in item.unanswered)
                    history[-1] = {"role": "assistant",
                                   "content": f"{label}{item.answer}{open_parts}\n\n<sub>{timing:.1f} s</sub>"}
                    yield history, "", sources_html(rt, item), passages_html(item)
        except Exception as exc:  # one line in the chat, not a trace; the server and other users go on
            history[-1] = {"role": "assistant", "content": f"⚠ {failure_line(exc)}"}
            yield history, "", "", ""

    return respond


def upload_handler(rt: Runtime):
    """Adds files to the corpus (never overwriting) and refreshes the index."""
    def upload(files, progress: gr.Progress = gr.Progress()):  # noqa: B008 (gradio injects it)
        if not files:
            return "No file chosen."
        messages, added = [], 0
        known = {**rt.index.manifest["docs"], **rt.index.manifest.get("skipped", {})}
        for f in files:
            path = Path(f if isinstance(f, str) else f.name)
            if path.suffix.lower() not in SUFFIXES:
                messages.append(f"✗ {path.name}: unsupported type (use {', '.join(sorted(SUFFIXES))})")
                continue
            try:
                read_raw(path)
            except LoadError as exc:
                messages.append(f"✗ {exc}")
                continue
            stored, message = add_file(path, rt.cfg.corpus, known)
            messages.append(message)
            added += stored is not None
        if added:
            progress(0.3, desc="indexing new files")
            index = rt.refresh(progress=False)
            messages.append(f"index: {index.manifest['n_chunks']} chunks from {len(index.manifest['docs'])} files")
        return "\n".join(messages)

    return upload


def brief_handler(rt: Runtime, downloads: Path):
    """Writes a briefing; its download lands in `downloads`."""
    def brief(topic: str, model: str, sections: float, fmt: str):
        """Streams the briefing: a status line per section, then the whole text and the download."""
        error = question_error(topic or "")
        if error:
            yield f"⚠ {error.replace('question', 'topic')}", None
            return
        if fmt not in FORMATS:
            yield f"⚠ unknown format {fmt!r}; choose {' or '.join(FORMATS)}", None
            return
        for item in briefing_stream(rt, topic, int(sections), model):
            if isinstance(item, Progress):
                yield f"*{html.escape(item.note)}…* ({item.done}/{item.total})", None
                continue
            if not item.sections:
                notes = "; ".join(item.errors)
                yield f"🚫 The documents say nothing on this topic that could be cited. {notes}".strip(), None
                return
            yield to_markdown(item), str(save_briefing(item, fmt, downloads))

    return brief


def chat_tab(rt: Runtime, models: list[str]) -> None:
    with gr.Tab("Chat"):
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Answer", height=380, elem_id="chat")
                question = gr.Textbox(label="Question", placeholder="在此提问 / ask in English",
                                      elem_id="question")
                with gr.Row():
                    ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
                    clear = gr.Button("Clear history")
                gr.Examples(EXAMPLES, inputs=question)
            with gr.Column(scale=2):
                model = gr.Dropdown(models, value=rt.cfg.generator, label="Model")
                k = gr.Slider(1, MAX_PASSAGES, value=rt.cfg.k, step=1, label="Passages to read")
                gr.Markdown("### Sources")
                sources = gr.HTML(label="Sources", elem_id="sources")
        with gr.Accordion("Show retrieved passages", open=False):
            passages = gr.HTML()
    outputs = [chat, question, sources, passages]
    respond = chat_handler(rt)
    # One generator serves chat and briefings: they share a single slot of the queue ("generate").
    ask_btn.click(respond, [question, chat, model, k], outputs, api_name="ask", concurrency_id="generate")
    question.submit(respond, [question, chat, model, k], outputs, api_name=False, concurrency_id="generate")
    clear.click(lambda: ([], "", "", ""), None, outputs, api_name=False)


def upload_tab(rt: Runtime) -> None:
    with gr.Tab("Add documents"):
        files = gr.File(file_count="multiple", file_types=sorted(SUFFIXES), label="Upload")
        add_btn = gr.Button("Add to corpus and index")
        status = gr.Textbox(label="Status", lines=6, elem_id="upload-status")
    add_btn.click(upload_handler(rt), files, status, api_name="upload")


def brief_tab(rt: Runtime, models: list[str], downloads: Path) -> None:
    with gr.Tab("Briefing"):
        with gr.Row():
            with gr.Column(scale=3):
                topic = gr.Textbox(label="Topic", placeholder="例如：各地如何推进生态治理？", elem_id="topic")
                brief_btn = gr.Button("Write briefing", variant="primary", elem_id="brief")
            with gr.Column(scale=2):
                brief_model = gr.Dropdown(models, value=rt.cfg.generator, label="Model")
                docs = gr.Slider(1, 6, value=5, step=1, label="Sections (themes), at most")
                fmt = gr.Radio(list(FORMATS), value="Markdown", label="Download as")
        briefing = gr.Markdown(elem_id="briefing")
        download = gr.File(label="Download", elem_id="briefing-file")
    brief_btn.click(brief_handler(rt, downloads), [topic, brief_model, docs, fmt], [briefing, download],
                    api_name="brief", concurrency_id="generate")


def build_app(rt: Runtime) -> gr.Blocks:
    models = [s.name for s in generator_specs(rt.cfg.models_dir)]
    # Briefing downloads live outside the repo and go when the server stops (the app holds the folder).
    downloads = tempfile.TemporaryDirectory(prefix="rag-briefings-")
    with gr.Blocks(title="Chinese documents QA") as app:
        gr.Markdown("## Ask your Chinese documents\nAnswers cite the exact source sentences; "
                    "when the documents do not say, the assistant says so.")
        chat_tab(rt, models)
        upload_tab(rt)
        brief_tab(rt, models, Path(downloads.name))
    app.briefing_downloads = downloads
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--model", default=None, help="default generator")
    args = parser.parse_args()
    setup_logging(False)
    cfg = make_config(args.corpus, generator=args.model)
    rt = Runtime.open(cfg)
    app = build_app(rt)
    app.queue(default_concurrency_limit=1, max_size=64)
    app.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False)


if __name__ == "__main__":
    main()
