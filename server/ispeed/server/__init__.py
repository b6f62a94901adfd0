"""The ispeed test server: measurement endpoints, test tokens, result ingest."""
