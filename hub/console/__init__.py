"""The staff web console: pages rendered on the server from the same services as the API."""
