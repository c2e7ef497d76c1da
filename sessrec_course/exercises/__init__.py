"""Checked exercises for every lesson: ``from sessrec_course.exercises import lesson01 as ex; ex.q1.check(fn)``."""

from sessrec_course.exercises.core import Case, Exercise, Outcome, same

__all__ = ["Case", "Exercise", "Outcome", "same"]
