"""Figures for the serving lessons."""

from __future__ import annotations
