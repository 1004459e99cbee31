"""The exchange log: append-only, hash-chained, with signed checkpoints auditors can verify."""
