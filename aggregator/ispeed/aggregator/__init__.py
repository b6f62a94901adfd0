"""Aggregator: methodology v1 monthly statistics, the open-data export and simulation."""
