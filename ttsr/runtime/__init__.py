"""Running backends: batching within their size ranges, timed passes and latency statistics."""
