"""PayRoster: the people directory for sales-commission workspaces."""

__version__ = "0.1.0"
