"""Investigations (cases): models, keyword-only operations and the case graph."""
