"""`rag bench`: speed and memory figures, one module per benchmark (ingest, query, startup, load), never asserted."""
