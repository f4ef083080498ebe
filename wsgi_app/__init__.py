"""A JWT-protected WSGI API mapping IP networks to site names."""

from __future__ import annotations

from .app import App, create_app
from .config import ConfigError, Settings
from .middleware import JWTMiddleware, current_user
from .tokens import TokenRefused, Tokens

__all__ = [
    "App",
    "ConfigError",
    "JWTMiddleware",
    "Settings",
    "TokenRefused",
    "Tokens",
    "create_app",
    "current_user",
]
