"""Electronic seals on legal documents: a trust store of issuing agencies' keys, and the pipeline
step that checks each document's SM2/SM3 seal against it."""
