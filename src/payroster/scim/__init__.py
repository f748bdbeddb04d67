"""SCIM 2.0 door (contract §5)."""
