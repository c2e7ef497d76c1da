"""Helpers of the Merlin track's lessons (``notebooks/merlin/``, kernel ``sessrec-merlin``) that reach the course venv.

The course's own models need the course venv (torch 2.13 with transformers 5, pandas 2); the Merlin kernel has
transformers 4.30 and pandas 1.5. :func:`course_transformer` therefore trains the course's Transformer in a child
process of the course venv, on the course's ETL output for the same sessions (:func:`course_sessions_like`),
and returns its figures as JSON: the lesson puts them in one table with Transformers4Rec's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from sessrec_course.paths import project_root

log = logging.getLogger(__name__)

COURSE_PYTHON_ENV = "SESSREC_COURSE_PYTHON"  # the course venv's python, when not <checkout>/.venv/bin/python


def course_python() -> Path:
    """The course venv's interpreter (``$SESSREC_COURSE_PYTHON`` or ``.venv/bin/python`` of this checkout)."""
    python = Path(os.environ.get(COURSE_PYTHON_ENV) or project_root() / ".venv" / "bin" / "python")
    if not python.exists():
        raise FileNotFoundError(f"no course venv at {python}: run `make setup` (or set {COURSE_PYTHON_ENV})")
    return python


def course_sessions_like(course_root: str | Path, nvt_dir: str | Path, out: str | Path) -> Path:
    """``out/course/{train,test}.parquet``: the course's sessions with the ids of NVTabular's ``nvt_dir`` splits."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from sessrec_course.etl.nvtabular_workflow import read_split

    target = Path(out) / "course"
    target.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        ids = read_split(nvt_dir, split)["session_id"].to_numpy()
        table = pq.read_table(Path(course_root) / f"{split}.parquet")
        pq.write_table(table.filter(pc.is_in(table["session_id"], value_set=pa.array(ids))),
                       target / f"{split}.parquet")
    return Path(out)


def course_transformer(folder: str | Path, n_items: int, timeout: float = 1800, **settings: Any) -> dict[str, Any]:
    """Train the course's Transformer (or ``preset="mlp"``, ``"gru"``...) on ``folder/course/`` in the course venv.

    Returns its figures (JSON, metrics in %), from :func:`sessrec_course.bench.speed.course_training`.
    """
    code = ("import json, sys; from sessrec_course.bench.speed import course_training; "
            "print(json.dumps(course_training(**json.loads(sys.argv[1]))))")
    arguments = json.dumps({"folder": str(folder), "n_items": int(n_items), "preset": "transformer", **settings})
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JUPYTER_PATH")}
    env["PYTHONPATH"] = str(project_root())
    done = subprocess.run([str(course_python()), "-c", code, arguments], capture_output=True, text=True,
                          timeout=timeout, cwd=project_root(), env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the course Transformer failed in {course_python()} (exit {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown_table(frame: Any, digits: int = 2) -> str:
    """A DataFrame as a markdown table (index first; empty cells for NaN), without the tabulate package."""
    import pandas as pd

    head = ["", *map(str, frame.columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in frame.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)
