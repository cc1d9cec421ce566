"""Install and authentication: token exchange, code grant, session tokens."""
