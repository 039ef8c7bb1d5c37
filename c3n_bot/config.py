"""One validated Settings object, read from C3N_* variables and .env, built in entry points."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "C3N_"
SUPPORTED_LANGUAGES = ("en", "es")
# Values that ship in examples and docs; a real deployment must never run with them.
PLACEHOLDER_SECRETS = frozenset({"change-me", "changeme", "secret", "placeholder", "dev"})
MIN_SECRET_LENGTH = 32
PACKAGE_DIR = Path(__file__).resolve().parent


class SettingsError(Exception):
    """Start-up configuration is invalid; the message names each offending variable."""


@dataclass(frozen=True)
class FhirSink:
    """A FHIR R4 server that receives every submission."""

    name: str
    url: str
    token: str | None


class Settings(BaseSettings):
    """Deployment settings; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
    )

    database_url: str = "sqlite:///./c3n.db"
    secret_key: SecretStr | None = None
    public_url: str = "http://localhost:8000"
    demo: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    flows_dir: Path | None = None

    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_mode: Literal["webhook", "polling"] = "polling"
    telegram_webhook_secret: SecretStr | None = None

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_url: str = "https://api.twilio.com"
    twilio_mps: float = Field(default=1.0, gt=0, le=1000)

    fhir_sinks: str | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres|postgresql|postgresql\+psycopg)://", value):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("public_url", "telegram_api_url", "twilio_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("twilio_from")
    @classmethod
    def _twilio_from(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\+[1-9]\d{6,14}|MG[0-9a-fA-F]{32}", value):
            raise ValueError("must be an E.164 number (+15551234567) or a Messaging Service SID")
        return value

    @field_validator("fhir_sinks")
    @classmethod
    def _fhir_sinks(cls, value: str | None) -> str | None:
        seen: set[str] = set()
        for item in filter(None, (part.strip() for part in (value or "").split(","))):
            name, sep, url = item.partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name.strip()):
                raise ValueError("must be a comma list of name=url")
            if not re.match(r"^https?://[^/\s]+", url.strip()):
                raise ValueError(f"sink {name.strip()!r} needs an http(s) URL")
            if name.strip().lower() in seen:
                raise ValueError(f"sink {name.strip()!r} is named twice")
            seen.add(name.strip().lower())
        return value

    @model_validator(mode="after")
    def _consistency(self) -> Settings:
        errors: list[str] = []
        secret = self.secret_key.get_secret_value() if self.secret_key else None
        if not self.demo:
            if secret is None:
                errors.append("C3N_SECRET_KEY: required outside demo mode")
            elif secret.lower() in PLACEHOLDER_SECRETS or len(secret) < MIN_SECRET_LENGTH:
                errors.append(
                    "C3N_SECRET_KEY: placeholder or too short "
                    f"(use at least {MIN_SECRET_LENGTH} random characters)"
                )
        if self.telegram_token and self.telegram_mode == "webhook":
            if not self.telegram_webhook_secret:
                errors.append("C3N_TELEGRAM_WEBHOOK_SECRET: required in webhook mode")
            elif not re.fullmatch(
                r"[A-Za-z0-9_-]{1,256}", self.telegram_webhook_secret.get_secret_value()
            ):
                errors.append("C3N_TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")
        if self.twilio_account_sid:
            if not self.twilio_auth_token:
                errors.append("C3N_TWILIO_AUTH_TOKEN: required when C3N_TWILIO_ACCOUNT_SID is set")
            if not self.twilio_from:
                errors.append("C3N_TWILIO_FROM: required when C3N_TWILIO_ACCOUNT_SID is set")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @cached_property
    def session_secret(self) -> str:
        """The signing key: the configured one, or a random one for a demo process."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return secrets.token_urlsafe(32)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        url = self.database_url
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def is_sqlite(self) -> bool:
        """Whether the embedded SQLite database is configured."""
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """Cookies get the Secure flag when the service is public over https."""
        return self.public_url.startswith("https://")

    @property
    def telegram_enabled(self) -> bool:
        """The Telegram channel is on when a bot token is set."""
        return self.telegram_token is not None

    @property
    def twilio_enabled(self) -> bool:
        """The SMS channel is on when Twilio credentials are set."""
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    def sinks(self) -> list[FhirSink]:
        """The configured FHIR sinks, each with its bearer token from C3N_FHIR_TOKEN_<NAME>."""
        dotenv = _dotenv_values(self.model_config.get("env_file"))
        result = []
        for item in filter(None, (part.strip() for part in (self.fhir_sinks or "").split(","))):
            name, _, url = item.partition("=")
            name = name.strip()
            key = f"{ENV_PREFIX}FHIR_TOKEN_{name.upper()}"
            token = os.environ.get(key) or dotenv.get(key) or None
            result.append(FhirSink(name=name, url=url.strip().rstrip("/"), token=token))
        return result

    def flows_path(self) -> Path:
        """Where flow files live: C3N_FLOWS_DIR, or the ones shipped with the package."""
        return self.flows_dir or data_dir("flows")


def _dotenv_values(env_file: object) -> dict[str, str]:
    # Per-sink tokens have dynamic names, so they are read here rather than as fields.
    if not isinstance(env_file, str | Path) or not Path(env_file).is_file():
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v}


def data_dir(name: str) -> Path:
    """A data folder shipped with the package (flows, locales), found from any working dir."""
    installed = PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / name


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, raising SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ")
        if location:
            lines.append(f"{ENV_PREFIX}{location[0].upper()}: {message}")
        else:
            lines.extend(part.strip() for part in message.split(";"))
    return "invalid configuration:\n  " + "\n  ".join(lines)
