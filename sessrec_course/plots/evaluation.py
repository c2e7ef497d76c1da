"""Figures for the evaluation lessons."""

from __future__ import annotations
