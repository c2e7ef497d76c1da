"""Benchmarks of the course, all run by ``python -m sessrec_bench`` (``--help`` lists the subcommands).

- :mod:`.quality`     baselines + PyTorch models on benchmark split folders, beside published numbers
- :mod:`.speed`       course-side ETL and training throughput on generated events
- :mod:`.speed_suite` ``bench speed``: ETL, training and serving speed in one run
- :mod:`.peers`       the same work in the frozen Merlin venv (NVTabular CPU mode, Transformers4Rec XLNet)
- :mod:`.report`      markdown sections of ``docs/benchmarks.md`` and JSON of the raw results
- :mod:`.etl_speed`, :mod:`.torch_train_speed`, :mod:`.profile_quality`, :mod:`.frameworks`: one measurement each
  (``bench etl``, ``train-speed``, ``profile``, ``frameworks``), printed as markdown rows
"""
