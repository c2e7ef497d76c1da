"""``python -m sessrec_bench quality|peers|speed|render``: run a benchmark, write JSON and a docs/benchmarks.md section.

``etl``, ``train-speed``, ``profile``, ``frameworks``, ``loadtest`` and ``faults`` run one measurement and print its markdown rows; their
arguments go to the module (``python -m sessrec_bench etl --help``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import sys
from pathlib import Path

from sessrec_course.paths import build_dir, project_root

QUALITY_HEADING = "Quality on public splits"
PEERS_HEADING = "Peers: the course beside NVTabular and Transformers4Rec"
SPEED_HEADING = "Speed: ETL, training and serving in one run (bench speed)"
# subcommands whose arguments the module parses itself: name -> (module, help)
MEASUREMENTS = {
    "etl": ("sessrec_bench.etl_speed", "ETL throughput at several log sizes, a fresh process per size"),
    "train-speed": ("sessrec_bench.torch_train_speed", "loader and one-epoch training throughput per model"),
    "profile": ("sessrec_bench.profile_quality", "baselines and models on a profile's data, as the notebooks"),
    "frameworks": ("sessrec_bench.frameworks", "Keras vs PyTorch twins: test quality and seconds per epoch"),
    "splits": ("sessrec_bench.make_splits", "small unseen split folders (samples + generated knobs) for the recipe"),
    "loadtest": ("sessrec_bench.loadtest", "the served ensemble under load: throughput, latency, CPU per level"),
    "faults": ("sessrec_bench.fault_drills", "stubs killed and stopped under load, overload with and without limits"),
    "dask-etl": ("sessrec_bench.dask_etl", "distributed ETL at 1 and 2 Dask workers beside one process, peak RSS"),
    "time-features": ("sessrec_bench.time_features", "one preset trained with or without time features, on test"),
    "solved": ("sessrec_bench.solved_lessons", "a lesson with its exercise stubs replaced by the reference solutions"),
    "peers-2026": ("sessrec_bench.peers_2026", "RecTools and RecBole beside the course recipe, scored by its evaluate"),
    "course": ("sessrec_bench.course_runner", "every lesson headless into build/notebooks and the summary (make course)"),
}


def _command_line(argv: list[str]) -> str:
    return "python -m sessrec_bench " + " ".join(shlex.quote(a) for a in argv)


def _cmd_quality(args: argparse.Namespace, argv: list[str]) -> int:
    from sessrec_bench.quality import default_split_folders, run_quality
    from sessrec_bench.report import (
        machine_description,
        quality_markdown,
        update_section,
        write_json,
    )

    folders = [Path(f) for f in args.splits] if args.splits else default_split_folders()
    missing = [str(f) for f in folders if not (f / "train_sessions.txt").is_file()]
    if missing and not args.splits:
        print(f"skipped: no benchmark splits at {', '.join(missing)} (shared data missing)")
        return 0
    if missing:
        raise SystemExit(f"not a benchmark split folder (train_sessions.txt + test.tsv): {', '.join(missing)}")
    machine = machine_description()
    results = []
    for folder in folders:
        results.append(run_quality(folder, models=args.models, baselines=args.baselines,
                                   time_budget_s=args.time_budget, config_path=args.config, progress=args.progress))
        print(quality_markdown(results[-1]), "\n", flush=True)
    data = {"command": _command_line(argv), "machine": machine, "results": results}
    write_json(args.json, data)
    print(f"raw results: {args.json}")
    if args.markdown:
        update_section(args.markdown, QUALITY_HEADING, quality_section(data, args.json, args.note))
        print(f"updated section '{QUALITY_HEADING}' of {args.markdown}")
    return 0


def _section_header(data: dict, json_path: str, note: str | None) -> list[str]:
    """The lines every benchmark section starts with: command, raw-results file, machine, optional note."""
    from sessrec_bench.report import describe_machine

    body = [f"Command: `{data['command']}` (raw results: `{json_path}`).", "",
            f"Machine: {describe_machine(data['machine'])}.", ""]
    return body + [note, ""] if note else body


def quality_section(data: dict, json_path: str, note: str | None = None) -> str:
    """The markdown body of the quality section from the raw results of a quality run."""
    from sessrec_bench.quality import PUBLISHED
    from sessrec_bench.report import quality_markdown

    body = _section_header(data, json_path, note)
    body += [quality_markdown(r) + "\n" for r in data["results"]]
    targets = ", ".join(f"{name} {v['SR-GNN'][0]:.2f} / {v['SR-GNN'][1]:.2f}" for name, v in PUBLISHED.items())
    body += ["P@20 = HR@20 = Recall@20 and MRR@20 in %, every line of `test.tsv` ranked against the whole "
             "catalogue by `sessrec_course.evaluation.evaluate` (unseen targets count as misses); the neural "
             "models hold out `valid_sessions` training sessions (the latest, or a random sample with "
             "`valid_holdout = \"random\"`) for early stopping on MRR@20. "
             "Hyper-parameters: `benchmarks/configs/<split>.toml`; seeds fixed (42), so an unbudgeted run "
             "repeats its numbers; a budgeted run plans its epochs from a measured step time, so its cut-off "
             "can move with machine load.", "",
             f"Full run (target: best course model ≥ SR-GNN, {targets}, within 1 h per split on 2 cores): "
             "`make bench`, i.e. `python -m sessrec_bench -v quality --markdown docs/benchmarks.md` "
             "(neural budget = `time_budget_s` of the config, 3300 s per split; `--time-budget 0` for none; "
             "`--models gru transformer mlp xlnet bert` to choose). Any folder with `train_sessions.txt` + "
             "`test.tsv` can be passed as a positional argument."]
    return "\n".join(body)


def _publish(args: argparse.Namespace, argv: list[str], machine: dict, result: dict, heading: str, section) -> int:
    """Write a run's raw JSON, print its markdown section and rewrite that section of ``--markdown`` if given."""
    from sessrec_bench.report import update_section, write_json

    data = {"command": _command_line(argv), "machine": machine, **result}
    write_json(args.json, data)
    text = section(data, args.json, args.note)
    print(text)
    if args.markdown:
        update_section(args.markdown, heading, text)
        print(f"updated section '{heading}' of {args.markdown}")
    return 0


def _cmd_peers(args: argparse.Namespace, argv: list[str]) -> int:
    from sessrec_bench.peers import run_peers
    from sessrec_bench.report import machine_description

    machine = machine_description()
    result = run_peers(n_events=args.events, venv=Path(args.venv), workdir=Path(args.workdir), epochs=args.epochs,
                       hidden_size=args.hidden_size, max_length=args.max_length, batch_size=args.batch_size,
                       skip_merlin=args.skip_merlin)
    return _publish(args, argv, machine, result, PEERS_HEADING, peers_section)


def peers_section(data: dict, json_path: str, note: str | None = None) -> str:
    """The markdown body of the peers section from the raw results of a peers run."""
    from sessrec_bench.peers import peers_markdown

    return "\n".join([*_section_header(data, json_path, note), peers_markdown(data)])


def _cmd_speed(args: argparse.Namespace, argv: list[str]) -> int:
    from sessrec_bench.report import machine_description
    from sessrec_bench.speed_suite import run_speed

    machine = machine_description()
    result = run_speed(args.etl_events, args.train_events, args.models, args.hidden_size, args.batch_size,
                       args.serving_requests, args.concurrency)
    return _publish(args, argv, machine, result, SPEED_HEADING, speed_section)


def speed_section(data: dict, json_path: str, note: str | None = None) -> str:
    """The markdown body of the speed section from the raw results of a speed run."""
    from sessrec_bench.speed_suite import speed_markdown

    return "\n".join([*_section_header(data, json_path, note), speed_markdown(data)])


def _merge_quality(runs: list[dict]) -> dict:
    """One quality result from runs of single splits (e.g. run side by side): commands joined, results concatenated."""
    if not all("results" in run for run in runs):
        raise SystemExit("only quality results can be rendered together")
    return {"command": "` and `".join(run["command"] for run in runs), "machine": runs[0]["machine"],
            "results": [result for run in runs for result in run["results"]]}


def _cmd_render(args: argparse.Namespace, argv: list[str]) -> int:
    import json

    from sessrec_bench.report import update_section

    runs = [json.loads(Path(path).read_text(encoding="utf-8")) for path in args.json]
    data, where = (runs[0], args.json[0]) if len(runs) == 1 else (_merge_quality(runs), ", ".join(args.json))
    if "results" in data:
        update_section(args.markdown, QUALITY_HEADING, quality_section(data, where, args.note))
    elif "etl" in data:
        update_section(args.markdown, SPEED_HEADING, speed_section(data, where, args.note))
    else:
        update_section(args.markdown, PEERS_HEADING, peers_section(data, where, args.note))
    print(f"updated {args.markdown} from {where}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m sessrec_bench``."""
    parser = argparse.ArgumentParser(prog="python -m sessrec_bench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="baselines + torch models on benchmark split folders")
    q.add_argument("splits", nargs="*", help="split folders (train_sessions.txt + test.tsv); default: shared splits")
    q.add_argument("--models", nargs="*", default=None, help="neural presets (default: the config's neural_models, else gru transformer mlp)")
    q.add_argument("--baselines", nargs="*", default=None, help="baseline names (default: all)")
    q.add_argument("--time-budget", type=float, default=None,
                   help="seconds for all neural models of one split (default: the config's; 0 = none)")
    q.add_argument("--config", default=None, help="TOML config (default: benchmarks/configs/<split>.toml)")
    q.add_argument("--json", default=str(build_dir() / "bench" / "quality.json"))
    q.add_argument("--markdown", default=None, help="markdown file whose quality section is rewritten")
    q.add_argument("--note", default=None, help="a paragraph added to the markdown section")
    q.add_argument("--progress", action="store_true", help="progress bars")
    p = sub.add_parser("peers", help="course vs NVTabular CPU + Transformers4Rec XLNet on the same generated events")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--venv", default=str(project_root() / ".venv-merlin"))
    p.add_argument("--workdir", default=str(build_dir() / "bench" / "peers"))
    p.add_argument("--epochs", type=int, default=5, help="training epochs on both sides (1 is too few to compare quality)")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--skip-merlin", action="store_true", help="course side only (no Merlin venv)")
    p.add_argument("--json", default=str(build_dir() / "bench" / "peers.json"))
    p.add_argument("--markdown", default=None, help="markdown file whose peers section is rewritten")
    p.add_argument("--note", default=None, help="a paragraph added to the markdown section")
    s = sub.add_parser("speed", help="ETL, training and serving speed of the course in one run")
    s.add_argument("--etl-events", type=int, nargs="*", default=[1_000_000, 5_000_000], help="ETL sizes ([] = skip)")
    s.add_argument("--train-events", type=int, default=300_000, help="generated events the models train on")
    s.add_argument("--models", nargs="*", default=["mlp", "gru", "transformer", "bert"], help="presets ([] = skip)")
    s.add_argument("--hidden-size", type=int, default=128)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--serving-requests", type=int, default=10_000, help="requests per concurrency (0 = skip)")
    s.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    s.add_argument("--json", default=str(build_dir() / "bench" / "speed.json"))
    s.add_argument("--markdown", default=None, help="markdown file whose speed section is rewritten")
    s.add_argument("--note", default=None, help="a paragraph added to the markdown section")
    r = sub.add_parser("render", help="rewrite a docs section from the JSON of earlier runs (several quality runs merge)")
    r.add_argument("json", nargs="+")
    r.add_argument("--markdown", default=str(project_root() / "docs" / "benchmarks.md"))
    r.add_argument("--note", default=None)
    for name, (_, text) in MEASUREMENTS.items():
        sub.add_parser(name, help=f"{text} (arguments: python -m sessrec_bench {name} --help)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark CLI; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = [a for a in argv[:1] if a in ("-v", "--verbose")]
    if argv[len(verbose):][:1] and argv[len(verbose)] in MEASUREMENTS:  # the module parses the rest
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(name)s %(message)s")
        module = importlib.import_module(MEASUREMENTS[argv[len(verbose)]][0])
        return module.main(argv[len(verbose) + 1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    handler = {"quality": _cmd_quality, "peers": _cmd_peers, "speed": _cmd_speed, "render": _cmd_render}[args.command]
    return handler(args, argv)


if __name__ == "__main__":
    sys.exit(main())
