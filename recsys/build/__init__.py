"""The write side: rendering and embedding products, assembling and publishing a version, the sharded
reindex pipeline with its job records, locks and runners, and live upserts and deletes."""
