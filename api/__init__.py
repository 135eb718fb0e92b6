"""The HTTP edge: FastAPI app factory, routes, errors. Filled in by the HTTP API issue."""
