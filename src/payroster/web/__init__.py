"""The web app: server-rendered pages over the same services as the API (contract §6)."""
