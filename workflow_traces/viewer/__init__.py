"""The local web viewer: ``workflow-traces ui [LOCATION]`` (see viewer/server.py)."""

__all__: list[str] = []
