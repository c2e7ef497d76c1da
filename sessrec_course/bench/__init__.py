"""Benchmarks of the course, runnable as ``python -m sessrec_course.bench {quality,peers}``.

- :mod:`.quality` baselines + PyTorch models on benchmark split folders, beside published numbers
- :mod:`.speed`   course-side ETL and training throughput on generated events
- :mod:`.peers`   the same work in the frozen Merlin venv (NVTabular CPU mode, Transformers4Rec XLNet)
- :mod:`.report`  markdown sections of ``docs/benchmarks.md`` and JSON of the raw results
"""
