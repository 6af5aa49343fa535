"""The permit registry: registration, application, issuance and the permit lifecycle."""
