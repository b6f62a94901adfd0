"""The ispeed client: latency, multi-stream download/upload, result submission.

Light by design: imports only the standard library, aiohttp and ispeed.core.
"""
