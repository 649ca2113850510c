"""Training the models that ship in `rag/models/` from public data (never committed)."""
