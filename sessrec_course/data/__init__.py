"""Session data: the generated default click log, loaders for real formats, benchmark split readers."""

from sessrec_course.data.errors import DataError
from sessrec_course.data.synthetic import SyntheticLog, generate_events, generate_log

__all__ = ["DataError", "SyntheticLog", "generate_events", "generate_log"]
