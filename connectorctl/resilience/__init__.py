"""The resilience pipeline, written once: rate limit -> circuit -> retry -> call -> log."""
