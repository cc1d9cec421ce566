"""Install and authentication: token exchange, code grant, session tokens (PLATFORM.md §4–§6)."""
