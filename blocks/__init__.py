"""Prefect blocks: the settings and credentials each adapter needs, stored on the Prefect server."""
