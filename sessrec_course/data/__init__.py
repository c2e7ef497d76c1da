"""Session data: the generated default click log, loaders for real formats, benchmark split readers."""

from sessrec_course.data.benchmarks import BenchmarkSplit, load_benchmark
from sessrec_course.data.errors import DataError
from sessrec_course.data.loaders import (
    load_booking_trips,
    load_diginetica,
    load_rees46,
    load_table,
    load_yoochoose_clicks,
    load_yoochoose_prepared,
)
from sessrec_course.data.synthetic import SyntheticLog, generate_events, generate_log

__all__ = [
    "BenchmarkSplit", "DataError", "SyntheticLog", "generate_events", "generate_log", "load_benchmark",
    "load_booking_trips", "load_diginetica", "load_rees46", "load_table", "load_yoochoose_clicks",
    "load_yoochoose_prepared",
]
