"""The read side: the live index (a published version with its delta), candidate retrieval, score
fusion, filters, request checks, and the cached service the API calls."""
