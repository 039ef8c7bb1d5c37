"""Settings come from C3N_* variables or a .env file; every bad value is named at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from c3n_bot.config import FhirSink, SettingsError, load_settings

GOOD_SECRET = "k3y-" + "0123456789abcdef" * 2  # 36 characters
SOURCES = ["env", "dotenv"]


def configure(source: str, values: dict[str, str | None], monkeypatch: pytest.MonkeyPatch) -> None:
    """Provide C3N_* values as environment variables or as a .env file in the cwd.

    A value of None leaves the variable unset.
    """
    given = {name: value for name, value in values.items() if value is not None}
    if source == "env":
        for name, value in given.items():
            monkeypatch.setenv(name, value)
    else:
        lines = [f"{name}={value}\n" for name, value in given.items()]
        Path(".env").write_text("".join(lines), encoding="utf-8")


BAD: dict[str, tuple[dict[str, str | None], str]] = {
    "database url scheme": ({"C3N_DATABASE_URL": "mysql://db/c3n"}, "C3N_DATABASE_URL"),
    "secret missing": ({"C3N_SECRET_KEY": None}, "C3N_SECRET_KEY"),
    "secret empty": ({"C3N_SECRET_KEY": ""}, "C3N_SECRET_KEY"),
    "secret placeholder": ({"C3N_SECRET_KEY": "change-me"}, "C3N_SECRET_KEY"),
    "secret short": ({"C3N_SECRET_KEY": "s3cr3t-but-short-31-characters"}, "C3N_SECRET_KEY"),
    "twilio mps zero": ({"C3N_TWILIO_MPS": "0"}, "C3N_TWILIO_MPS"),
    "telegram mode": ({"C3N_TELEGRAM_MODE": "bogus"}, "C3N_TELEGRAM_MODE"),
    "webhook without secret": (
        {"C3N_TELEGRAM_TOKEN": "123:abc", "C3N_TELEGRAM_MODE": "webhook"},
        "C3N_TELEGRAM_WEBHOOK_SECRET",
    ),
    "twilio sid without token": (
        {"C3N_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "C3N_TWILIO_FROM": "+15555550100"},
        "C3N_TWILIO_AUTH_TOKEN",
    ),
    "twilio sid without from": (
        {"C3N_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "C3N_TWILIO_AUTH_TOKEN": "tok"},
        "C3N_TWILIO_FROM",
    ),
    "twilio from not e164": ({"C3N_TWILIO_FROM": "555-0100"}, "C3N_TWILIO_FROM"),
    "fhir sinks without =": ({"C3N_FHIR_SINKS": "https://fhir.example.org"}, "C3N_FHIR_SINKS"),
    "fhir sink bad name": ({"C3N_FHIR_SINKS": "1st=https://fhir.example.org"}, "C3N_FHIR_SINKS"),
    "fhir sink not http": ({"C3N_FHIR_SINKS": "reg=ftp://fhir.example.org"}, "C3N_FHIR_SINKS"),
}


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("values", "variable"), list(BAD.values()), ids=list(BAD))
def test_bad_value_is_named(
    source: str, values: dict[str, str | None], variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each invalid or missing value fails start-up with a message naming its variable."""
    configure(source, {"C3N_SECRET_KEY": GOOD_SECRET, **values}, monkeypatch)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert f"{variable}:" in message
    secret = values.get("C3N_SECRET_KEY")
    if secret:
        assert secret not in message  # a rejected secret is never echoed into logs


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("source", SOURCES)
def test_valid_values_are_read(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete production configuration loads from either source."""
    configure(
        source,
        {
            "C3N_SECRET_KEY": GOOD_SECRET,
            "C3N_DATABASE_URL": "postgres://c3n:pw@db.internal/c3n",
            "C3N_PUBLIC_URL": "https://c3n.example.org/",
            "C3N_TELEGRAM_TOKEN": "123:abc",
            "C3N_TELEGRAM_MODE": "webhook",
            "C3N_TELEGRAM_WEBHOOK_SECRET": "hook_secret-1",
            "C3N_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "C3N_TWILIO_AUTH_TOKEN": "tok",
            "C3N_TWILIO_FROM": "MG" + "a" * 32,
            "C3N_TWILIO_MPS": "10",
        },
        monkeypatch,
    )

    settings = load_settings()

    assert settings.session_secret == GOOD_SECRET
    assert settings.sqlalchemy_url == "postgresql+psycopg://c3n:pw@db.internal/c3n"
    assert settings.public_url == "https://c3n.example.org"
    assert settings.secure_cookies
    assert settings.telegram_enabled and settings.telegram_mode == "webhook"
    assert settings.twilio_enabled and settings.twilio_mps == 10


@pytest.mark.usefixtures("clean_env")
def test_environment_wins_over_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable set in the environment overrides the same one in .env."""
    configure("dotenv", {"C3N_SECRET_KEY": GOOD_SECRET, "C3N_TWILIO_MPS": "0"}, monkeypatch)
    monkeypatch.setenv("C3N_TWILIO_MPS", "5")

    assert load_settings().twilio_mps == 5


@pytest.mark.usefixtures("clean_env")
def test_demo_mode_generates_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demo mode starts without a secret and signs with one random key per Settings."""
    monkeypatch.setenv("C3N_DEMO", "true")

    settings = load_settings()

    assert settings.secret_key is None
    assert len(settings.session_secret) >= 32
    assert settings.session_secret == settings.session_secret
    assert load_settings().session_secret != settings.session_secret


@pytest.mark.usefixtures("clean_env")
def test_demo_mode_accepts_a_placeholder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example .env (with its placeholder secret) runs as a demo."""
    configure("dotenv", {"C3N_DEMO": "true", "C3N_SECRET_KEY": "change-me"}, monkeypatch)

    assert load_settings().demo


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("source", SOURCES)
def test_sinks_with_their_tokens(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sink gets the bearer token of C3N_FHIR_TOKEN_<NAME>, or none."""
    configure(
        source,
        {
            "C3N_SECRET_KEY": GOOD_SECRET,
            "C3N_FHIR_SINKS": " registry=https://fhir.example.org/r4/ , backup=http://localhost:9000",
        },
        monkeypatch,
    )
    monkeypatch.setenv("C3N_FHIR_TOKEN_REGISTRY", "registry-token")

    assert load_settings().sinks() == [
        FhirSink(name="registry", url="https://fhir.example.org/r4", token="registry-token"),
        FhirSink(name="backup", url="http://localhost:9000", token=None),
    ]


@pytest.mark.usefixtures("clean_env")
def test_sink_token_from_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sink token written in .env is used like every other value there."""
    configure(
        "dotenv",
        {
            "C3N_SECRET_KEY": GOOD_SECRET,
            "C3N_FHIR_SINKS": "registry=https://fhir.example.org/r4",
            "C3N_FHIR_TOKEN_REGISTRY": "registry-token",
        },
        monkeypatch,
    )

    assert [sink.token for sink in load_settings().sinks()] == ["registry-token"]


@pytest.mark.usefixtures("clean_env")
def test_empty_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`C3N_X=` lines copied from an example .env neither sign with '' nor enable Telegram."""
    configure(
        "dotenv",
        {"C3N_DEMO": "true", "C3N_SECRET_KEY": "", "C3N_TELEGRAM_TOKEN": ""},
        monkeypatch,
    )

    settings = load_settings()

    assert len(settings.session_secret) >= 32
    assert not settings.telegram_enabled
