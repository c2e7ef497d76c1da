"""Figures for the training lessons."""

from __future__ import annotations
