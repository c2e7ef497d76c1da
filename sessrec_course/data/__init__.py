"""Session data: the generated default click log and loaders for real formats."""

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
    "DataError", "SyntheticLog", "generate_events", "generate_log",
    "load_booking_trips", "load_diginetica", "load_rees46", "load_table", "load_yoochoose_clicks",
    "load_yoochoose_prepared",
]
