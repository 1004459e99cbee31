"""Signed evidence of submission and delivery: XML documents signed with XML-DSig (ECDSA P-256,
exclusive c14n, enveloped), so that an agency's own XML tools can check what the gateway said."""
