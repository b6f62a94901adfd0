"""The test suite; its helpers (servers, clients, the lab) import as tests.<module>."""
