"""Readers for the raw inputs (administrative files, surveys) and key repair."""
