"""The index files: versioned directories and their manifest, vectors with their ANN backends, BM25,
the live delta's log format and the content-addressed embedding cache. Nothing here runs a model."""
