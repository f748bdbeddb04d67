"""SCIM 2.0 door (README.md, "SCIM provisioning")."""
