"""Shared by every part of ispeed: result schema, configuration, errors, the store and its DDL.

Importing this package stays cheap: the store backends (chDB, clickhouse-driver) load lazily.
"""
