"""Figures for the data lessons."""

from __future__ import annotations
