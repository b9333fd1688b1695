"""Scenario files: the schema (pydantic models, ``scenario``, ``timeline``) and ``load``."""
