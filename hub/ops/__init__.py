"""Operating the hub: what a request is part of (trace), what it logs (logs), what it counts
(metrics), and the middleware that ties the three to each HTTP request (observe)."""
