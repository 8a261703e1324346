"""Tests of the sandbox's provider simulators and customer emulator."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
