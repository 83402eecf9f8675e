"""API resources; every module here is imported by ``create_sandbox_app`` and registers routes."""
