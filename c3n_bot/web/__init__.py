"""The FastAPI application: webhooks, dashboard, JSON API."""
