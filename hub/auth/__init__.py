"""OAuth 2.0 authorization server (client credentials) and the request guard."""
