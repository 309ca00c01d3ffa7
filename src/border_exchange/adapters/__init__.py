"""Edges: Kafka, files, SQLite, clocks and processes behind narrow seams."""
