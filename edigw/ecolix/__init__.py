"""Everything that speaks to Ecolix: the contract (openapi.yaml), the client, its limiter."""
