"""Read models rebuilt from the log (views, runner). Filled in by the projections issue."""
