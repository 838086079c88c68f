"""HTTP at the edge: the ingress (aiohttp), its request and response bodies, and its client."""
