"""The web app: server-rendered pages over the same services as the API (README.md, "Web app")."""
