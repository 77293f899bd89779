"""Offline evaluation: metrics over judged queries."""
